// The mailmux VFS (src/store/sqlite/mailmux-vfs.c): a commit's WAL frames are gathered and written
// with one write, and still reach the file before any other connection can see the commit, and
// before COMMIT returns (so a process killed right after is no loss). Every other SQLite test runs
// through it too, since every store of the test process uses it once loaded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import SqliteDatabase from 'better-sqlite3';
import { sqliteVfsStats, useSqliteVfs, VFS_LIBRARY } from '../../src/store/sqlite/vfs.ts';

const vfs = useSqliteVfs('mailmux');
// CI builds it (npm ci runs scripts/build-native.ts); elsewhere a machine without a C compiler skips.
const skip = vfs.vfs === 'mailmux' ? false : process.env.CI === 'true' ? false : `not built: ${vfs.reason}`;

test('the mailmux VFS is built and is the default VFS of the process', { skip }, () => {
  assert.equal(vfs.vfs, 'mailmux', `${VFS_LIBRARY}: ${vfs.reason}`);
  assert.equal(sqliteVfsStats()!.default, true);
});

function openWal(path: string): SqliteDatabase.Database {
  const db = new SqliteDatabase(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  return db;
}

const driver = createRequire(import.meta.url).resolve('better-sqlite3');
const digest = (s: string): string => createHash('sha256').update(s).digest('hex');

// The reader: another thread, with its own connection, as the ingest writer thread and the
// checkpointer are. It sees the commits only through the WAL file and the wal-index.
const READER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { readonly: true });
parentPort.on('message', () => {
  try {
    const r = db.prepare('SELECT count(*) AS n, coalesce(sum(length(v)), 0) AS bytes, max(id) AS last FROM t').get();
    const v = r.last === null ? '' : db.prepare('SELECT v FROM t WHERE id = ?').get(r.last).v;
    parentPort.postMessage({ n: r.n, bytes: r.bytes, lastDigest: createHash('sha256').update(v).digest('hex') });
  } catch (err) {
    parentPort.postMessage({ error: err.message });
  }
});
`;

test('commits of every shape are visible to another thread at once, intact, written with few writes', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailmux-vfs-'));
  const path = join(dir, 'x.sqlite');
  const db = openWal(path);
  db.pragma('wal_autocheckpoint = 0');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL); CREATE INDEX t_v ON t (substr(v, 1, 16))');
  const reader = new Worker(READER, { eval: true, workerData: { path, driver } });
  const ask = (): Promise<{ n: number; bytes: number; lastDigest: string; error?: string }> =>
    new Promise((resolve) => reader.once('message', resolve));
  const before = sqliteVfsStats()!;
  try {
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    let n = 0;
    let bytes = 0;
    let last = '';
    let commits = 0;
    for (let i = 0; i < 240; i++) {
      // Small and large rows; every 40th transaction is larger than the 4 MiB buffer; a tiny page
      // cache makes SQLite spill frames to the WAL before COMMIT; every 7th rolls back.
      const rows = i % 40 === 39 ? 120 : 1 + (i % 9);
      const size = i % 40 === 39 ? 60_000 : i % 3 === 0 ? 20 : 3_000 + 97 * i;
      db.pragma(`cache_size = ${i % 5 === 0 ? 8 : 2000}`);
      const values = Array.from({ length: rows }, (_, k) => `${i}:${k}:`.padEnd(size, String.fromCharCode(97 + ((i + k) % 26))));
      const rollback = i % 7 === 6;
      try {
        db.transaction(() => {
          for (const v of values) insert.run(v);
          if (rollback) throw new Error('roll back');
        })();
      } catch (err) {
        if (!rollback) throw err;
      }
      if (!rollback) {
        commits++;
        n += rows;
        for (const v of values) bytes += v.length;
        last = values[values.length - 1]!;
      }
      if (i === 120) db.pragma('wal_checkpoint(TRUNCATE)'); // the WAL starts over from its header
      const seen = ask();
      reader.postMessage(null);
      const r = await seen;
      assert.equal(r.error, undefined);
      assert.deepEqual(r, { n, bytes, lastDigest: digest(last) }, `after transaction ${i}`);
    }
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    const after = sqliteVfsStats()!;
    const writes = after.wal_writes - before.wal_writes;
    const flushes = after.flushes - before.flushes;
    assert.ok(after.commit_flushes - before.commit_flushes >= commits, 'each commit flushed at its commit frame');
    assert.ok(after.header_rewrites > before.header_rewrites, 'the checksum rewrite at commit was exercised');
    assert.equal(after.late_flushes - before.late_flushes, 0, 'nothing was still buffered when a commit was published');
    // Two writes per frame from SQLite; one per commit (plus spills, rewrites and 124 KiB chunks) to the file.
    assert.ok(writes > 8 * flushes, `${writes} WAL writes from SQLite, ${flushes} to the file`);
  } finally {
    await reader.terminate();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

// A writer process that commits, flushes the WAL as the store does (fdatasync), then reports each
// committed id; it is killed mid-stream. Everything it reported must be there after reopening.
const WRITER = (vfsModule: string, path: string): string => `
import { openSync, fdatasyncSync } from 'node:fs';
import Database from ${JSON.stringify(driver)};
import { useSqliteVfs } from ${JSON.stringify(vfsModule)};
if (useSqliteVfs('mailmux').vfs !== 'mailmux') throw new Error('no vfs');
const db = new Database(${JSON.stringify(path)});
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
const wal = openSync(${JSON.stringify(path)} + '-wal', 'r');
const insert = db.prepare('INSERT INTO t (id, v) VALUES (?, ?)');
for (let id = 1; ; id++) {
  db.transaction(() => { for (let k = 0; k < 3; k++) insert.run(id * 10 + k, String(id).padEnd(2000 + (id % 50) * 100, 'x')); })();
  fdatasyncSync(wal);
  process.stdout.write(id + '\\n');
}
`;

test('a process killed right after its commits returned loses none of them', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mailmux-vfs-kill-'));
  const path = join(dir, 'x.sqlite');
  const script = join(dir, 'writer.mjs');
  writeFileSync(script, WRITER(new URL('../../src/store/sqlite/vfs.ts', import.meta.url).pathname, path));
  try {
    const child = spawn(process.execPath, [script], { cwd: new URL('../..', import.meta.url).pathname, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    let reported = 0;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const lines = out.split('\n').filter(Boolean);
        reported = Number(lines[lines.length - 1]);
        if (reported >= 400 && !child.killed) {
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.once('exit', () => resolve());
    });
    await exited;
    assert.ok(reported >= 400, `the writer reported ${reported} commits before it ended`);
    const db = new SqliteDatabase(path);
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      const ids = new Set((db.prepare('SELECT id FROM t').all() as { id: number }[]).map((r) => r.id));
      for (let id = 1; id <= reported; id++) for (let k = 0; k < 3; k++) assert.ok(ids.has(id * 10 + k), `commit ${id} lost`);
    } finally {
      db.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('MAILMUX_SQLITE_VFS=unix keeps SQLite\'s own VFS for the whole process', async () => {
  // A process of its own: the choice is process-wide, and this one has loaded the shim already.
  const dir = mkdtempSync(join(tmpdir(), 'mailmux-vfs-unix-'));
  const script = join(dir, 'probe.mjs');
  const root = new URL('../..', import.meta.url).pathname;
  writeFileSync(
    script,
    `
import { loadConfig } from ${JSON.stringify(join(root, 'src/config/config.ts'))};
import { openStore } from ${JSON.stringify(join(root, 'src/store/index.ts'))};
import { sqliteVfsStats } from ${JSON.stringify(join(root, 'src/store/sqlite/vfs.ts'))};
const config = loadConfig({ MAILMUX_DATA_DIR: ${JSON.stringify(dir)}, MAILMUX_SQLITE_VFS: 'unix' });
const store = await openStore({ databaseUrl: null, dataDir: config.dataDir, sqliteVfs: config.sqliteVfs });
process.stdout.write(JSON.stringify({ vfs: store.sqliteVfs, stats: sqliteVfsStats() }));
await store.close();
`,
  );
  try {
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      child.stdout.on('data', (d: Buffer) => (text += d.toString()));
      child.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`probe exited with ${code}`))));
    });
    assert.deepEqual(JSON.parse(out), { vfs: { vfs: 'unix', reason: 'MAILMUX_SQLITE_VFS=unix' }, stats: null });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
