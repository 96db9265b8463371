// Two Mailmux processes on one PostgreSQL database: mail accepted over SMTP by process A reaches an
// SSE stream held by process B (the event log tail, woken by NOTIFY), and each subscribed webhook
// gets exactly one delivery although both processes run a webhook worker.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpsServer, type Server } from 'node:https';
import { createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { generate } from 'selfsigned';
import { backends } from '../helpers/backends.ts';
import { buildMessage } from '../helpers/mail.ts';
import { openSse } from '../helpers/sse.ts';
import { transact } from '../helpers/smtp.ts';
import { LoopbackDns } from '../helpers/dns-server.ts';
import { call, startServer, storeEnv, type Provisioned, type ServerProcess } from './process.ts';

const pgBackend = backends().find((b) => b.name === 'postgres');

function smtpPortOf(p: ServerProcess): number {
  const m = /smtp (\d+)/.exec(p.stdout());
  if (!m) throw new Error(`no smtp port in banner:\n${p.stdout()}`);
  return Number(m[1]);
}

interface Delivery {
  eventId: string;
  type: string;
  attempt: string;
  body: any;
}

describe('two processes on one PostgreSQL database', { skip: pgBackend ? false : 'needs MAILMUX_TEST_DATABASE_URL' }, () => {
  let db: Provisioned;
  let a: ServerProcess;
  let b: ServerProcess;
  let dns: LoopbackDns;
  let receiver: Server;
  let receiverUrl: string;
  const deliveries: Delivery[] = [];
  let secret = '';
  const rawBodies: { body: Buffer; signature: string }[] = [];

  before(async () => {
    db = await pgBackend!.provision();
    dns = new LoopbackDns();
    const dnsAddr = await dns.start();
    // A loopback HTTPS webhook receiver with a self-signed certificate the servers are told to trust.
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
      keySize: 2048,
      algorithm: 'sha256',
      notBeforeDate: new Date(Date.now() - 86_400_000),
      notAfterDate: new Date(Date.now() + 2 * 86_400_000),
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] }],
    });
    const dir = mkdtempSync(join(tmpdir(), 'mailmux-mp-'));
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, pems.cert);
    receiver = createHttpsServer({ key: pems.private, cert: pems.cert }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        rawBodies.push({ body, signature: String(req.headers['x-sendmux-signature']) });
        deliveries.push({ eventId: String(req.headers['x-sendmux-event-id']), type: String(req.headers['x-sendmux-event-type']), attempt: String(req.headers['x-sendmux-delivery-attempt']), body: JSON.parse(body.toString('utf8')) });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    receiverUrl = `https://localhost:${(receiver.address() as AddressInfo).port}/hook`;

    const env = {
      ...storeEnv(db),
      MAILMUX_DEFAULT_DOMAIN: 'agents.mailmux.test',
      MAILMUX_HOSTNAME: 'mx.mailmux.test',
      MAILMUX_DNS_SERVERS: dnsAddr,
      MAILMUX_WEBHOOK_ALLOW_PRIVATE: 'true',
      // The safety-net poll so slow that only NOTIFY can bring A's events to B within the test's waits.
      MAILMUX_EVENT_POLL_SECONDS: '600',
      MAILMUX_WEBHOOK_CA_FILE: caFile,
    };
    a = await startServer({ ...env, MAILMUX_DATA_DIR: mkdtempSync(join(tmpdir(), 'mailmux-a-')) }, { expectRootKey: true });
    b = await startServer({ ...env, MAILMUX_DATA_DIR: mkdtempSync(join(tmpdir(), 'mailmux-b-')) }, { expectRootKey: false });
  });

  after(async () => {
    await a?.stop();
    await b?.stop();
    receiver?.close();
    await dns?.stop();
    await db?.drop();
  });

  test('SMTP on A -> SSE on B, and exactly one webhook delivery per event', async () => {
    const root = a.rootKey!;
    const created = await call(a.url, 'POST', '/mailboxes', { token: root, body: { email: 'multi@agents.mailmux.test' } });
    assert.equal(created.status, 201);
    const key = created.body.data.credential.secret as string;

    const hook = await call(b.url, 'POST', '/webhooks', { token: root, body: { url: receiverUrl, event_types: ['message.received'] } });
    assert.equal(hook.status, 201, JSON.stringify(hook.body));
    secret = hook.body.data.secret;

    const stream = await openSse(`${b.url}/api/v1/mailbox/events`, key);
    assert.equal(stream.status, 200);

    const N = 5;
    const latencies: number[] = [];
    for (let i = 0; i < N; i++) {
      const raw = await buildMessage({ to: 'multi@agents.mailmux.test', subject: `cross-process ${i}` });
      const t = performance.now();
      const r = await transact(smtpPortOf(a), 'alice@example.org', ['multi@agents.mailmux.test'], raw);
      assert.equal(r.data?.code, 250);
      const f = await stream.next({ timeoutMs: 5000 });
      latencies.push(f.at - t);
      assert.equal(f.event, 'message.received');
      assert.equal(JSON.parse(f.data!).message.subject, `cross-process ${i}`);
    }
    stream.close();
    // B heard each of A's commits within the 5 s wait above while its safety poll runs every
    // 600 s: through NOTIFY. (Latency itself is measured by bench/sse-latency.ts, not here.)
    process.stdout.write(`# cross-process latencies ms: ${latencies.map((l) => l.toFixed(1)).join(', ')}\n`);

    // Both processes run webhook workers; each event is delivered once.
    for (let i = 0; i < 100 && deliveries.length < N; i++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(deliveries.length, N, JSON.stringify(deliveries.map((d) => d.eventId)));
    assert.equal(new Set(deliveries.map((d) => d.eventId)).size, N);
    for (const d of deliveries) {
      assert.equal(d.type, 'message.received');
      assert.equal(d.attempt, '1');
      assert.equal(d.body.data.mailbox_id, created.body.data.mailbox.id);
    }
    for (const r of rawBodies) assert.equal(r.signature, `sha256=${createHmac('sha256', secret).update(r.body).digest('hex')}`);
  });
});
