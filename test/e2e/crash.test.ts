// The durability promise against the real process: a message answered 250 is stored, even when
// the server is killed (SIGKILL, no shutdown of any kind) while senders are delivering. After a
// restart on the same data every acknowledged message is there, once. On SQLite this runs through
// the whole write path: the ingest writer thread, group commit, the WAL flush and the VFS shim that
// gathers WAL writes (src/store/sqlite/mailmux-vfs.c); on PostgreSQL, through the pool.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { describeEachBackend } from '../helpers/backends.ts';
import { LoopbackDns } from '../helpers/dns-server.ts';
import { buildMessage } from '../helpers/mail.ts';
import { session } from '../helpers/smtp.ts';
import { call, startServer, storeEnv, type Provisioned, type ServerProcess } from './process.ts';

const DOMAIN = 'crash.mailmux.test';
const SENDERS = 8;
/** Acknowledged messages before the kill: enough for several batches to be in flight. */
const KILL_AFTER = 120;

function smtpPort(server: ServerProcess): number {
  const port = Number(/smtp (\d+) \(inbound MX\)/.exec(server.stdout())?.[1]);
  assert.ok(port > 0, 'the banner names the SMTP port');
  return port;
}

describeEachBackend('a server killed while receiving', (backend) => {
  let db: Provisioned;
  let dns: LoopbackDns;
  let env: Record<string, string>;
  const servers: ServerProcess[] = [];

  before(async () => {
    db = await backend.provision();
    dns = new LoopbackDns();
    env = { ...storeEnv(db), MAILMUX_DEFAULT_DOMAIN: DOMAIN, MAILMUX_DNS_SERVERS: await dns.start() };
  });
  after(async () => {
    for (const s of servers) s.kill();
    await dns.stop();
    await db.drop();
  });

  test('loses no message it answered 250', async () => {
    const first = await startServer(env, { expectRootKey: true });
    servers.push(first);
    const created = await call(first.url, 'POST', '/mailboxes', { token: first.rootKey!, body: { email: `agent@${DOMAIN}` } });
    assert.equal(created.status, 201);
    const key = (created.body as { data: { credential: { secret: string } } }).data.credential.secret;
    const port = smtpPort(first);

    const acknowledged = new Set<string>();
    const sent = new Set<string>();
    let next = 0;
    let killed = false;
    await Promise.all(
      Array.from({ length: SENDERS }, async () => {
        try {
          const client = await session(port);
          while (!killed) {
            const subject = `crash ${next++}`;
            const raw = await buildMessage({ from: 'sender@example.org', to: `agent@${DOMAIN}`, subject, text: `${subject}\n${'body line\n'.repeat(200)}` });
            const mail = await client.command('MAIL FROM:<sender@example.org>');
            const rcpt = await client.command(`RCPT TO:<agent@${DOMAIN}>`);
            assert.equal(mail.code, 250);
            assert.equal(rcpt.code, 250);
            sent.add(subject);
            const data = await client.data(raw);
            if (data.code !== 250) continue;
            acknowledged.add(subject);
            if (acknowledged.size >= KILL_AFTER && !killed) {
              killed = true;
              first.kill();
            }
          }
        } catch {
          // The connection went with the process.
        }
      }),
    );
    assert.ok(acknowledged.size >= KILL_AFTER, `${acknowledged.size} messages acknowledged before the kill`);

    const second = await startServer(env, { expectRootKey: false });
    servers.push(second);
    const stored: string[] = [];
    for (let cursor: string | undefined; ; ) {
      const page = await call(second.url, 'GET', `/mailbox/messages?limit=100${cursor ? `&cursor=${cursor}` : ''}`, { token: key });
      assert.equal(page.status, 200);
      const body = page.body as { data: { subject: string }[]; pagination: { next_cursor?: string } };
      stored.push(...body.data.map((m) => m.subject));
      cursor = body.pagination.next_cursor;
      if (!cursor) break;
    }
    const missing = [...acknowledged].filter((s) => !stored.includes(s));
    assert.deepEqual(missing, [], 'every message answered 250 is stored');
    assert.equal(new Set(stored).size, stored.length, 'none is stored twice');
    for (const s of stored) assert.ok(sent.has(s), `${s} was sent`);
    await second.stop();
  });
});
