// Builds the SQLite VFS shim (src/store/sqlite/mailmux-vfs.c) into build/, against the SQLite headers
// better-sqlite3 ships with its own copy of SQLite. Run by `npm install` (postinstall); the machine
// already needs a C compiler there, for better-sqlite3. Without one, or on a platform it does not
// know, it says so and Mailmux runs on SQLite's own VFS (src/store/sqlite/vfs.ts).
// `node scripts/build-native.ts --force` rebuilds even when the library is newer than its source.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const source = join(root, 'src/store/sqlite/mailmux-vfs.c');
const suffix = process.platform === 'darwin' ? 'dylib' : 'so';
const target = join(root, 'build', `mailmux-vfs.${suffix}`);

function skip(why: string): never {
  // A library older than its source is not run: it would be code this checkout no longer has.
  const stale = existsSync(target) && existsSync(source) && statSync(target).mtimeMs < statSync(source).mtimeMs;
  if (stale) rmSync(target, { force: true });
  const kept = existsSync(target) ? `${target} from an earlier build stays in use` : "SQLite's own VFS will be used";
  process.stdout.write(`mailmux: SQLite VFS shim not built (${why}); ${kept}\n`);
  process.exit(0);
}

if (process.platform === 'win32') skip('not built on Windows');
let headers: string;
try {
  headers = join(dirname(createRequire(import.meta.url).resolve('better-sqlite3/package.json')), 'deps', 'sqlite3');
} catch {
  skip('better-sqlite3 is not installed');
}
if (!existsSync(join(headers, 'sqlite3ext.h'))) skip(`no sqlite3ext.h in ${headers}`);
const force = process.argv.includes('--force');
if (!force && existsSync(target) && statSync(target).mtimeMs >= statSync(source).mtimeMs) process.exit(0);

mkdirSync(dirname(target), { recursive: true });
const cc = process.env.CC || 'cc';
// -z nodelete: the library is never unloaded while SQLite still points at its VFS.
const link = process.platform === 'darwin' ? ['-dynamiclib'] : ['-shared', '-Wl,-z,nodelete'];
// Built beside the target and renamed over it: a running process keeps the library it mapped.
const partial = `${target}.${process.pid}.tmp`;
const r = spawnSync(cc, ['-O2', '-fPIC', '-Wall', '-Wextra', ...link, '-I', headers, '-o', partial, source], { stdio: 'inherit' });
if (r.error || r.status !== 0) {
  rmSync(partial, { force: true });
  skip(r.error ? `${cc}: ${r.error.message}` : `${cc} exited with ${r.status}`);
}
renameSync(partial, target);
process.stdout.write(`mailmux: built ${target}\n`);
