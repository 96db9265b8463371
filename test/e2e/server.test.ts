// The README's promise against the real process: `mailmux serve` starts with no configuration
// beyond MAILMUX_* variables, prints its URL and a root key once, and a client with nothing but
// fetch() can verify a domain over DNS, create a mailbox, rotate its keys, suspend and resume it;
// after SIGTERM and a restart on the same data the first root key still works and no new one is
// printed. Runs on SQLite, and on PostgreSQL (a fresh schema, see process.ts) when configured.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import pg from 'pg';
import { describeEachBackend, PG_URL_VAR } from '../helpers/backends.ts';
import { LoopbackDns, type Zone } from '../helpers/dns-server.ts';
import { call, runCli, startServer, storeEnv, type Provisioned, type ServerProcess } from './process.ts';

const HOSTNAME = 'mx.e2e.test';
const DOMAIN = 'acme.example';

/** Publishes a domain's dns_records (as POST /domains returns them) in the loopback zone. */
function publish(zone: Zone, domain: string, records: any): void {
  const txt = (name: string, value: string): void => {
    zone.txt.set(name, [...(zone.txt.get(name) ?? []), value]);
  };
  txt(records.verification.name, records.verification.value);
  txt(records.spf.name, records.spf.value);
  txt(records.dmarc.name, records.dmarc.value);
  for (const d of records.dkim) txt(d.name, d.value);
  zone.mx.set(domain, records.mx.map((m: any) => ({ exchange: m.target, priority: m.priority })));
  zone.mx.set(records.mail_from.mx.name, [{ exchange: records.mail_from.mx.target, priority: records.mail_from.mx.priority }]);
  txt(records.mail_from.spf.name, records.mail_from.spf.value);
}

/** The JSON log lines among a process's stdout (the banner is plain text). */
function logLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describeEachBackend('mailmux serve, end to end', (backend) => {
  let db: Provisioned;
  let dns: LoopbackDns;
  let env: Record<string, string>;
  const servers: ServerProcess[] = [];
  let server: ServerProcess;
  let rootKey: string;
  const secrets: string[] = [];
  const state: { domainId?: string; mailboxId?: string; firstKey?: { id: string; secret: string }; secondKey?: { id: string; secret: string } } = {};

  before(async () => {
    db = await backend.provision();
    dns = new LoopbackDns();
    env = { ...storeEnv(db), MAILMUX_HOSTNAME: HOSTNAME, MAILMUX_DNS_SERVERS: await dns.start(), MAILMUX_LOG_LEVEL: 'info' };
  });
  after(async () => {
    for (const s of servers) s.kill();
    await dns.stop();
    await db.drop();
  });

  test('the first start prints the bound REST API URL and a root key', async () => {
    server = await startServer(env, { expectRootKey: true });
    servers.push(server);
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const port = server.url.split(':').at(-1);
    assert.notEqual(port, '0');
    assert.match(server.stdout(), new RegExp(`Ports\\s+http ${port} `));
    assert.match(server.stdout(), backend.name === 'sqlite' ? /Storage\s+SQLite in / : /Storage\s+PostgreSQL/);
    assert.ok(server.rootKey);
    assert.match(server.rootKey, /^smx_root_[A-Za-z0-9]{40}$/);
    rootKey = server.rootKey;
    secrets.push(rootKey);

    if (db.pgSchema) {
      // The URL's search_path put every table in the test's own schema.
      const client = new pg.Client({ connectionString: process.env[PG_URL_VAR] });
      await client.connect();
      try {
        const r = await client.query('select table_schema from information_schema.tables where table_name = $1', ['mailboxes']);
        assert.ok(r.rows.some((row) => row.table_schema === db.pgSchema), JSON.stringify(r.rows));
      } finally {
        await client.end();
      }
    }

    const unauthenticated = await call(server.url, 'GET', '/domains');
    assert.equal(unauthenticated.status, 401);
    assert.equal(unauthenticated.body.error.code, 'authentication_required');
    const list = await call(server.url, 'GET', '/domains', { token: rootKey });
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.data, []);
  });

  test('a custom domain: create, publish its records in DNS, verify', async () => {
    const created = await call(server.url, 'POST', '/domains', { token: rootKey, body: { domain: DOMAIN } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const domain = created.body.data;
    assert.equal(domain.verification_status, 'pending');
    assert.equal(domain.dns_records.mx[0].target, HOSTNAME);
    state.domainId = domain.id;

    // Before the records exist the verification fails and the domain stays pending.
    const early = await call(server.url, 'POST', `/domains/${domain.id}/verify`, { token: rootKey });
    assert.equal(early.status, 200);
    assert.equal(early.body.data.status, 'pending');

    publish(dns.zone, DOMAIN, domain.dns_records);
    const queries = dns.queries;
    const verified = await call(server.url, 'POST', `/domains/${domain.id}/verify`, { token: rootKey });
    assert.equal(verified.status, 200, JSON.stringify(verified.body));
    assert.ok(dns.queries > queries, 'the server looked the records up in the configured DNS');
    assert.equal(verified.body.data.status, 'verified');
    assert.deepEqual(Object.values(verified.body.data.checks), Object.values(verified.body.data.checks).map(() => true));
    const got = await call(server.url, 'GET', `/domains/${domain.id}`, { token: rootKey });
    assert.equal(got.body.data.verification_status, 'verified');
    assert.equal(got.body.data.ses_verified_for_sending, true);
  });

  test('a mailbox on it, a second key, the first revoked, suspend and resume', async () => {
    const created = await call(server.url, 'POST', '/mailboxes', { token: rootKey, body: { email: `agent@${DOMAIN}`, display_name: 'Support agent' } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const { mailbox, credential } = created.body.data;
    assert.equal(mailbox.status, 'active');
    assert.match(credential.secret, /^smx_mbx_/);
    assert.equal(credential.server, HOSTNAME);
    state.mailboxId = mailbox.id;
    state.firstKey = { id: credential.public_id, secret: credential.secret };
    secrets.push(credential.secret);

    // The README's first curl: a mailbox on the default domain needs no DNS at all.
    const onDefault = await call(server.url, 'POST', '/mailboxes', { token: rootKey, body: { email: 'agent@mailmux.localhost' } });
    assert.equal(onDefault.status, 201, JSON.stringify(onDefault.body));
    secrets.push(onDefault.body.data.credential.secret);

    // A mailbox key authenticates (403 on a Management route, not 401).
    const asMailbox = await call(server.url, 'GET', '/domains', { token: state.firstKey.secret });
    assert.equal(asMailbox.status, 403);

    const second = await call(server.url, 'POST', `/mailboxes/${mailbox.id}/keys`, { token: rootKey, body: { app_name: 'agent v2' } });
    assert.equal(second.status, 201, JSON.stringify(second.body));
    state.secondKey = { id: second.body.data.credential.public_id, secret: second.body.data.credential.secret };
    secrets.push(state.secondKey.secret);
    assert.notEqual(state.secondKey.id, state.firstKey.id);

    const revoked = await call(server.url, 'DELETE', `/mailboxes/${mailbox.id}/keys/${state.firstKey.id}`, { token: rootKey });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.deepEqual(revoked.body.data, { deleted: true, id: state.firstKey.id });
    assert.equal((await call(server.url, 'GET', '/domains', { token: state.firstKey.secret })).status, 401);
    assert.equal((await call(server.url, 'GET', '/domains', { token: state.secondKey.secret })).status, 403);

    const suspended = await call(server.url, 'POST', `/mailboxes/${mailbox.id}/suspend`, { token: rootKey });
    assert.equal(suspended.status, 200, JSON.stringify(suspended.body));
    assert.equal(suspended.body.data.status, 'suspended');
    assert.equal((await call(server.url, 'GET', '/domains', { token: state.secondKey.secret })).status, 401, 'a suspended mailbox key stops working');

    const resumed = await call(server.url, 'POST', `/mailboxes/${mailbox.id}/resume`, { token: rootKey });
    assert.equal(resumed.status, 200, JSON.stringify(resumed.body));
    assert.equal(resumed.body.data.status, 'active');
    assert.equal((await call(server.url, 'GET', '/domains', { token: state.secondKey.secret })).status, 403);
    assert.equal((await call(server.url, 'GET', '/domains', { token: state.firstKey.secret })).status, 401, 'resume does not bring a revoked key back');

    const domain = await call(server.url, 'GET', `/domains/${state.domainId}`, { token: rootKey });
    assert.equal(domain.body.data.mailbox_count, 1);
  });

  test('SIGTERM stops the server cleanly; its JSON logs carry events and no secret', async () => {
    const { code, signal } = await server.stop();
    assert.equal(signal, null);
    assert.equal(code, 0, server.stderr());
    const logs = logLines(server.stdout());
    const events = logs.map((l) => l.event);
    for (const e of ['http.listening', 'domain.verified', 'mailbox.created', 'key.revoked', 'mailbox.suspended', 'mailbox.resumed', 'shutdown']) {
      assert.ok(events.includes(e), `log event ${e} missing: ${events.join(',')}`);
    }
    const logText = logs.map((l) => JSON.stringify(l)).join('\n');
    for (const secret of secrets) {
      assert.ok(!logText.includes(secret), 'a secret appeared in the logs');
      assert.ok(!server.stderr().includes(secret), 'a secret appeared on stderr');
    }
    assert.doesNotMatch(logText, /smx_(root|mbx)_[A-Za-z0-9]{40}|PRIVATE KEY/);
    // The root key appears exactly once on stdout: in the banner.
    assert.equal(server.stdout().split(rootKey).length - 1, 1);
  });

  test('a first start that cannot bind its port exits at once and mints no key; the next start prints one', async () => {
    const fresh = await backend.provision();
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const port = String((busy.address() as AddressInfo).port);
      const failed = await runCli(['serve'], { ...storeEnv(fresh), MAILMUX_HTTP_PORT: port });
      assert.equal(failed.code, 1, failed.stderr);
      assert.match(failed.stderr, /EADDRINUSE/);
      assert.doesNotMatch(failed.stdout + failed.stderr, /smx_root_/);
      // Nothing (a database pool, a worker timer) may hold the failed process open after its error.
      assert.ok(failed.quietMs < 5000, `exited ${failed.quietMs} ms after printing its error`);

      const next = await startServer(storeEnv(fresh), { expectRootKey: true });
      servers.push(next);
      assert.ok(next.rootKey, 'the key of the first successful start is shown');
      assert.equal((await call(next.url, 'GET', '/domains', { token: next.rootKey })).status, 200);
      assert.equal((await next.stop()).code, 0, next.stderr());
    } finally {
      busy.close();
      await fresh.drop();
    }
  });

  test('a restart on the same data prints no root key, keeps the data, and the first root key still works', async () => {
    const again = await startServer(env, { expectRootKey: false });
    servers.push(again);
    try {
      const domains = await call(again.url, 'GET', '/domains', { token: rootKey });
      assert.equal(domains.status, 200);
      assert.deepEqual(domains.body.data.map((d: any) => [d.id, d.verification_status]), [[state.domainId, 'verified']]);
      const mailbox = await call(again.url, 'GET', `/mailboxes/${state.mailboxId}`, { token: rootKey });
      assert.equal(mailbox.status, 200);
      assert.equal(mailbox.body.data.status, 'active');
      assert.equal((await call(again.url, 'GET', '/domains', { token: state.secondKey!.secret })).status, 403);
      assert.equal((await call(again.url, 'GET', '/domains', { token: state.firstKey!.secret })).status, 401);
    } finally {
      const { code } = await again.stop();
      assert.equal(code, 0, again.stderr());
    }
    assert.equal(again.rootKey, null);
    assert.doesNotMatch(again.stdout(), /smx_root_|Root API key/);
    assert.match(again.stdout(), /Mailmux is running\./);
  });
});
