// The outbound queue survives a crash: messages are queued, a real `mailmux serve` process starts
// delivering them to a loopback MX, is killed with SIGKILL while the MX holds some replies, and a
// new process finishes the queue. Every message reaches the MX, and none is confirmed twice.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { loadConfig } from '../../src/config/config.ts';
import { openServices } from '../../src/app/app.ts';
import { silentLogger } from '../../src/services/context.ts';
import { describeEachBackend } from '../helpers/backends.ts';
import { LoopbackDns } from '../helpers/dns-server.ts';
import { buildMessage } from '../helpers/mail.ts';
import { call, startServer, storeEnv, type Provisioned, type ServerProcess } from '../e2e/process.ts';
import { SmtpPeer, waitFor } from './peers.ts';

const MESSAGES = 40;
const DOMAIN = 'agents.mailmux.test';

describeEachBackend('outbound queue across a kill -9', (backend) => {
  let db: Provisioned;
  let dns: LoopbackDns;
  let mx: SmtpPeer;
  let env: Record<string, string>;
  let server: ServerProcess | null = null;
  const ids: string[] = [];
  let rootKey = '';

  before(async () => {
    db = await backend.provision();
    dns = new LoopbackDns();
    const dnsAddress = await dns.start();
    mx = new SmtpPeer();
    await mx.start();
    dns.zone.mx.set('far.example', [{ exchange: 'mx.far.example', priority: 10 }]);
    dns.zone.a.set('mx.far.example', ['127.0.0.1']);
    env = {
      ...storeEnv(db),
      MAILMUX_DEFAULT_DOMAIN: DOMAIN,
      MAILMUX_HOSTNAME: 'mx.mailmux.test',
      MAILMUX_DNS_SERVERS: dnsAddress,
      MAILMUX_OUTBOUND_MX_PORT: String(mx.port),
      MAILMUX_OUTBOUND_LEASE_SECONDS: '3',
      MAILMUX_OUTBOUND_TIMEOUT_SECONDS: '2',
      MAILMUX_SEND_RETRY_BASE_SECONDS: '1',
    };
    // Queue the messages with no server running: the queue is the database.
    const config = loadConfig({ ...env, MAILMUX_DATABASE_URL: db.databaseUrl ?? '', MAILMUX_LOG_LEVEL: 'silent' });
    const { store, services } = await openServices(config, { log: silentLogger, ...(db.pgSchema ? { pgSchema: db.pgSchema } : {}) });
    const issued = await services.teams.bootstrap();
    rootKey = issued!.secret;
    await services.domains.ensureDefaultDomain();
    const { mailbox } = await services.mailboxes.create(issued!.teamId, { email: `bulk@${DOMAIN}` });
    for (let i = 0; i < MESSAGES; i++) {
      const messageId = `<restart-${i}@${DOMAIN}>`;
      ids.push(messageId);
      const raw = await buildMessage({ from: mailbox.email, to: `r${i}@far.example`, subject: `Queued ${i}`, text: 'x'.repeat(2000), messageId });
      await services.outbound.submit({ mailboxId: mailbox.id, raw, envelopeFrom: mailbox.email, recipients: [`r${i}@far.example`], source: 'smtp' });
    }
    await services.ingest.close();
    await store.close();
  });

  after(async () => {
    server?.kill();
    await mx.stop();
    await dns.stop();
    await db.drop();
  });

  it('delivers every queued message after a SIGKILL, none confirmed twice', async () => {
    // Let some through, then hold the MX's replies so the crash lands mid-delivery.
    mx.holdAfter = 10;
    server = await startServer(env, { expectRootKey: false });
    await waitFor(() => mx.heldCount >= 1, 30_000, 'a held reply');
    // SMTP has no two-phase commit: between the MX's 250 and Mailmux's commit a crash would resend.
    // Kill once every reply the MX gave is recorded (logs `sent`), while others are still held.
    const proc = server;
    await waitFor(async () => {
      const res = await call(proc.url, 'GET', '/emails/logs?status=sent&limit=100', { token: rootKey });
      return res.status === 200 && res.body.data.length === mx.received.filter((m) => m.confirmed).length;
    }, 30_000, 'confirmed deliveries recorded');
    server.kill();
    await new Promise((r) => setTimeout(r, 500));
    const beforeCrash = mx.received.filter((m) => m.confirmed).length;
    mx.release();
    assert.ok(beforeCrash < MESSAGES, 'the crash happened before the queue was done');

    server = await startServer(env, { expectRootKey: false });
    const messageIdOf = (raw: Buffer): string => /^message-id:\s*(<[^>]+>)/im.exec(raw.toString('latin1'))?.[1] ?? '';
    await waitFor(() => new Set(mx.received.filter((m) => m.confirmed).map((m) => messageIdOf(m.raw))).size >= MESSAGES, 60_000, 'every message confirmed');
    await server.stop();
    server = null;
    const confirmed = new Map<string, number>();
    for (const m of mx.received.filter((x) => x.confirmed)) confirmed.set(messageIdOf(m.raw), (confirmed.get(messageIdOf(m.raw)) ?? 0) + 1);
    assert.deepEqual([...confirmed.keys()].sort(), [...ids].sort());
    for (const [id, n] of confirmed) assert.equal(n, 1, `${id} confirmed ${n} times`);
  });
});
