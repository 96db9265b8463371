// The root-key commands of the real CLI: `mailmux keys create-root | list-root | revoke-root`
// against the same store a server uses. Secrets go to stdout once and never to stderr or a
// listing; a revoked key stops working in a running server and in one started afterwards; bad
// usage exits 2 before touching the database.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describeEachBackend } from '../helpers/backends.ts';
import { call, runCli, startServer, storeEnv, type Provisioned, type ServerProcess } from './process.ts';

const SECRET = /smx_root_[A-Za-z0-9]{40}/;
const SECRET_LINE = /^smx_root_[A-Za-z0-9]{40}\n$/;
const CREATED = /^root key (smx_[a-z0-9]{24}) created for team (team_[a-z0-9]{24}); the secret above is shown once$/m;
const BOOTSTRAP = /^created the first team; its initial root key is (smx_root_[A-Za-z0-9]{40})$/m;

interface Key {
  id: string;
  secret: string;
}

describeEachBackend('mailmux keys (CLI)', (backend) => {
  let db: Provisioned;
  let env: Record<string, string>;
  const servers: ServerProcess[] = [];
  let initial: string;
  let ci: Key;
  let plain: Key;

  before(async () => {
    db = await backend.provision();
    env = storeEnv(db);
  });
  after(async () => {
    for (const s of servers) s.kill();
    await db.drop();
  });

  test('bad usage exits 2 with the usage text, before anything is created', async () => {
    const cases = [
      ['keys'],
      ['keys', 'frobnicate'],
      ['keys', 'revoke-root'],
      ['keys', 'create-root', '--bogus'],
      ['keys', 'create-root', '--name'],
      ['keys', 'list-root', 'extra'],
      ['frobnicate'],
    ];
    for (const args of cases) {
      const r = await runCli(args, env);
      assert.equal(r.code, 2, `${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
      assert.match(r.stderr, /usage:/, args.join(' '));
      assert.equal(r.stdout, '', args.join(' '));
      assert.doesNotMatch(r.stderr, SECRET, `${args.join(' ')} printed a key`);
    }
    if (backend.name === 'sqlite') assert.equal(existsSync(join(db.dataDir, 'mailmux.sqlite')), false, 'no database was created');
    const help = await runCli(['help'], env);
    assert.equal(help.code, 0);
    assert.match(help.stderr, /mailmux keys create-root/);
  });

  test('create-root prints one secret on stdout; stderr holds only the bootstrap note on a new database', async () => {
    const r = await runCli(['keys', 'create-root', '--name', 'ci'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, SECRET_LINE);
    const secret = r.stdout.trim();
    const created = CREATED.exec(r.stderr);
    assert.ok(created, r.stderr);
    ci = { id: created[1]!, secret };
    // The first command on an empty database made the team and its initial key, and said so.
    const note = BOOTSTRAP.exec(r.stderr);
    assert.ok(note, 'bootstrap note expected (the usage errors created nothing)');
    initial = note[1]!;
    assert.notEqual(initial, secret);
    assert.ok(!r.stderr.includes(secret), 'the new secret is on stdout only');
    const stderrSecrets = r.stderr.match(new RegExp(SECRET.source, 'g')) ?? [];
    assert.deepEqual(stderrSecrets, [initial], 'no secret on stderr but the bootstrap note');

    const again = await runCli(['keys', 'create-root'], env);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, SECRET_LINE);
    plain = { id: CREATED.exec(again.stderr)?.[1] ?? '', secret: again.stdout.trim() };
    assert.match(plain.id, /^smx_/);
    assert.doesNotMatch(again.stderr, SECRET, 'no bootstrap the second time, so no secret on stderr');
    assert.doesNotMatch(again.stderr, /created the first team/);
  });

  test('list-root lists ids, prefixes and suffixes, never secrets', async () => {
    const r = await runCli(['keys', 'list-root'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.doesNotMatch(r.stdout, SECRET);
    for (const s of [initial, ci.secret, plain.secret]) assert.ok(!r.stdout.includes(s));
    const rows = r.stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
    assert.equal(rows.length, 3, r.stdout);
    const byId = new Map(rows.map((row) => [row[0], row]));
    for (const [key, name] of [[ci, 'ci'], [plain, '']] as const) {
      const row = byId.get(key.id);
      assert.ok(row, `${key.id} listed`);
      assert.equal(row[1], `${key.secret.slice(0, 13)}…${key.secret.slice(-4)}`);
      assert.equal(row[2], 'active');
      assert.ok(!Number.isNaN(Date.parse(row[3] ?? '')));
      assert.equal(row[4], name);
    }
    const first = rows.find((row) => row[4] === 'initial root key');
    assert.equal(first?.[1], `${initial.slice(0, 13)}…${initial.slice(-4)}`);
  });

  test('revoke-root revokes: a running server answers 401 at once, and so does one started afterwards', async () => {
    const server = await startServer(env, { expectRootKey: false });
    servers.push(server);
    try {
      assert.equal((await call(server.url, 'GET', '/domains', { token: ci.secret })).status, 200);
      const r = await runCli(['keys', 'revoke-root', ci.id], env);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `revoked ${ci.id}\n`);
      const denied = await call(server.url, 'GET', '/domains', { token: ci.secret });
      assert.equal(denied.status, 401);
      assert.equal(denied.body.error.code, 'authentication_required');
      assert.equal((await call(server.url, 'GET', '/domains', { token: plain.secret })).status, 200);
    } finally {
      assert.equal((await server.stop()).code, 0, server.stderr());
    }
    assert.doesNotMatch(server.stdout(), /smx_root_/, 'the banner prints no key once a team exists');

    const list = await runCli(['keys', 'list-root'], env);
    const row = list.stdout.split('\n').find((l) => l.startsWith(`${ci.id}\t`));
    assert.match(row ?? '', /\trevoked \d{4}-\d\d-\d\dT/);

    const later = await startServer(env, { expectRootKey: false });
    servers.push(later);
    try {
      assert.equal((await call(later.url, 'GET', '/domains', { token: ci.secret })).status, 401);
      assert.equal((await call(later.url, 'GET', '/domains', { token: plain.secret })).status, 200);
      assert.equal((await call(later.url, 'GET', '/domains', { token: initial })).status, 200);
    } finally {
      assert.equal((await later.stop()).code, 0, later.stderr());
    }

    // Revoking again is fine; an unknown id is an error (exit 1), not bad usage.
    assert.equal((await runCli(['keys', 'revoke-root', ci.id], env)).code, 0);
    const unknown = await runCli(['keys', 'revoke-root', 'smx_000000000000000000000000'], env);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /not found/);
  });
});
