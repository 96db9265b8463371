// `npm test`: type-check, lint (including the layer rule), then every test file with Node's test
// runner. PostgreSQL runs when MAILMUX_TEST_DATABASE_URL is set; CI (CI=true) insists on it.
import { spawnSync } from 'node:child_process';

const PG_VAR = 'MAILMUX_TEST_DATABASE_URL';
const bin = (name: string): string => new URL(`../node_modules/.bin/${name}`, import.meta.url).pathname;

function run(label: string, cmd: string, args: string[]): void {
  process.stdout.write(`\n== ${label}\n`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: process.env });
  if (r.status !== 0) {
    process.stdout.write(`\n${label} failed\n`);
    process.exit(r.status ?? 1);
  }
}

const pgUrl = process.env[PG_VAR];
const requirePg = process.env.CI === 'true' || process.env.MAILMUX_REQUIRE_POSTGRES === '1';
if (!pgUrl && requirePg) {
  process.stderr.write(`${PG_VAR} is not set, but CI requires the PostgreSQL suite to run\n`);
  process.exit(1);
}

const only = process.argv.slice(2);
if (only.length === 0) {
  run('type-check', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']);
  run('lint', bin('eslint'), ['.']);
}
const files = only.length > 0 ? only : ['src/**/*.test.ts', 'test/**/*.test.ts'];
if (!pgUrl) process.stdout.write(`\nPostgreSQL suite skipped: set ${PG_VAR}=postgres://user:pass@host/db to run every store test on PostgreSQL too\n`);
run('tests', process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=120000', ...files]);
if (!pgUrl) process.stdout.write(`PostgreSQL suite skipped (set ${PG_VAR} to enable it)\n`);
