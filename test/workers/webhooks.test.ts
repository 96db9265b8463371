// Webhook delivery end to end: a loopback HTTPS receiver with a self-signed certificate (trusted
// through MAILMUX_WEBHOOK_CA_FILE), the real delivery worker, real inbound SMTP. Signatures are
// verified over the raw bytes; retries run on a clock the test moves; the SSRF guard is proven to
// refuse; two workers on one PostgreSQL database deliver each event exactly once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/config.ts';
import { openServices } from '../../src/app/app.ts';
import { silentLogger } from '../../src/services/context.ts';
import type { Services } from '../../src/services/index.ts';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { createSecureContext, rootCertificates } from 'node:tls';
import { isForbiddenAddress, postOnce, resolveTarget } from '../../src/services/webhook-transport.ts';
import { WEBHOOK_MAX_ATTEMPTS, WEBHOOK_RETRY_DELAYS_MS } from '../../src/services/webhooks.ts';
import { WebhookWorker } from '../../src/workers/webhooks.ts';
import { describeEachBackend } from '../helpers/backends.ts';
import { appValidator, MutableClock, startTestApp, type TestApp } from '../helpers/app.ts';
import { buildMessage, createMailbox, type TestMailbox } from '../helpers/mail.ts';
import { startSmtpRig, transact, type SmtpRig } from '../helpers/smtp.ts';
import { LoopbackDns } from '../helpers/dns-server.ts';
import { startInboundSmtp, type InboundSmtp } from '../../src/protocols/smtp/inbound.ts';
import { loadTlsMaterial } from '../../src/protocols/smtp/tls.ts';
import { RECEIVER_NAME, verifySignature, WebhookReceiver, type ReceivedRequest } from '../helpers/webhook-receiver.ts';

function message(to: string, subject: string): string {
  return [`From: Carol <carol@example.org>`, `To: ${to}`, `Subject: ${subject}`, `Message-ID: <${subject.replace(/\W/g, '')}@example.org>`, 'Date: Mon, 23 Nov 2026 10:00:00 +0000', '', 'Hello there.', ''].join('\r\n');
}

/** Ingest as the SMTP listener does it, announcing the message (message.received). */
async function receive(app: TestApp, mbx: TestMailbox, subject: string): Promise<void> {
  const raw = await buildMessage({ to: mbx.email, subject });
  const r = await app.services.ingest.deliver({ raw, targets: [{ mailboxId: mbx.id }], announce: { sender: 'alice@example.org' } });
  assert.equal(r.delivered.length, 1);
}

function json(r: ReceivedRequest): any {
  return JSON.parse(r.raw.toString('utf8'));
}

describe('webhook address policy', () => {
  test('refuses loopback, private, CGNAT, link-local, unique-local, unspecified, multicast and their IPv4-mapped forms', () => {
    for (const ip of [
      '127.0.0.1', '127.8.9.10', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', '100.127.255.255', '169.254.169.254',
      '0.0.0.0', '224.0.0.1', '239.255.255.250', '255.255.255.255', '::', '::1', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1',
      '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '::ffff:169.254.169.254', '64:ff9b::a9fe:a9fe', '::127.0.0.1',
    ]) {
      assert.equal(isForbiddenAddress(ip), true, ip);
    }
    for (const ip of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '2001:4860:4860::8888']) {
      assert.equal(isForbiddenAddress(ip), false, ip);
    }
  });

  test('checks the resolved addresses and pins the one allowed; names that resolve only inside are refused', async () => {
    const inside = async () => [{ address: '10.0.0.5', family: 4 }];
    assert.equal(await resolveTarget('https://hooks.example.com/x', false, inside), 'destination_not_allowed');
    assert.equal(await resolveTarget('https://[::ffff:127.0.0.1]/x', false), 'destination_not_allowed');
    assert.equal(await resolveTarget('https://127.0.0.1:8443/x', false), 'destination_not_allowed');
    const mixed = async () => [{ address: '192.168.0.9', family: 4 }, { address: '93.184.216.34', family: 4 }];
    const t = await resolveTarget('https://hooks.example.com/x', false, mixed);
    assert.ok(typeof t !== 'string');
    assert.equal(t.address, '93.184.216.34');
    assert.equal(t.host, 'hooks.example.com');
    const allowed = await resolveTarget('https://hooks.example.com/x', true, inside);
    assert.ok(typeof allowed !== 'string' && allowed.address === '10.0.0.5');
    assert.equal(await resolveTarget('https://hooks.example.com/x', false, async () => Promise.reject(new Error('ENOTFOUND'))), 'dns_error');
    assert.equal(await resolveTarget('http://hooks.example.com/x', false, inside), 'invalid_url');
  });
});

describeEachBackend('webhook delivery', (backend) => {
  let receiver: WebhookReceiver;
  let rig: SmtpRig;
  let app: TestApp;
  let worker: WebhookWorker;
  let a: TestMailbox;
  let b: TestMailbox;

  before(async () => {
    receiver = new WebhookReceiver();
    await receiver.start();
    rig = await startSmtpRig(backend, { MAILMUX_WEBHOOK_ALLOW_PRIVATE: 'true', MAILMUX_WEBHOOK_CA_FILE: receiver.caFile });
    app = rig.app;
    worker = new WebhookWorker(app.services, { pollMs: 100 });
    worker.start();
    a = await createMailbox(app, 'alpha');
    b = await createMailbox(app, 'beta');
  });
  after(async () => {
    await worker.stop();
    await rig.close();
    await receiver.stop();
  });

  const createHook = async (body: Record<string, unknown>) => {
    const r = await app.api('POST', '/api/v1/webhooks', { body });
    assert.equal(r.status, 201, r.text);
    return r.body.data as { id: string; secret: string };
  };

  test('sendmux.test: signed over the raw body, the four headers, a payload that fits the spec, and the attempt recorded', async () => {
    const w = await createHook({ url: receiver.url('/test-hook'), event_types: ['sendmux.test'] });
    const before = receiver.requests.length;
    const t = await app.api('POST', `/api/v1/webhooks/${w.id}/test`);
    assert.equal(t.status, 200, t.text);
    await receiver.waitFor(before + 1);
    const req = receiver.requests[before]!;
    assert.equal(req.method, 'POST');
    assert.equal(req.path, '/test-hook');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.ok(verifySignature(w.secret, req.raw, req.headers['x-sendmux-signature']), 'signature verifies with the secret');
    assert.ok(!verifySignature('whsec_wrong', req.raw, req.headers['x-sendmux-signature']));
    assert.equal(req.headers['x-sendmux-event-id'], t.body.data.event_id);
    assert.equal(req.headers['x-sendmux-event-type'], 'sendmux.test');
    assert.equal(req.headers['x-sendmux-delivery-attempt'], '1');
    assert.equal(req.headers.host, `localhost:${receiver.port}`);
    const body = json(req);
    appValidator().validateComponent('WebhookEventPayload', body);
    assert.equal(body.id, t.body.data.event_id);
    assert.equal(body.type, 'sendmux.test');
    assert.equal(body.team_public_id, app.teamId);
    assert.equal(body.data.webhook_id, w.id);
    assert.deepEqual(body.data.recipients, []);

    worker.kick();
    await worker.idle();
    const list = await app.api('GET', `/api/v1/webhooks/${w.id}/deliveries`);
    assert.equal(list.status, 200, list.text);
    assert.equal(list.body.data.length, 1);
    const d = list.body.data[0];
    assert.equal(d.result, 'success');
    assert.equal(d.response_status, 200);
    assert.equal(d.response_body, 'ok');
    assert.equal(d.delivery_attempt, 1);
    assert.equal(d.max_attempts, WEBHOOK_MAX_ATTEMPTS);
    assert.equal(d.next_retry_at, null);
    assert.equal(d.error_message, null);
    assert.equal(d.payload_available, true);
    assert.equal(d.request_payload_bytes, req.raw.length);
    assert.match(d.id, /^whda_/);
    const p = await app.api('GET', `/api/v1/webhooks/${w.id}/deliveries/${d.id}/payload`);
    assert.equal(p.status, 200, p.text);
    assert.deepEqual(p.body.data.payload, body);
    assert.equal(p.body.data.event_id, body.id);
  });

  test('a message received over SMTP is delivered as message.received, and mailbox filters scope it', async () => {
    const scopedA = await createHook({ url: receiver.url('/scoped-a'), event_types: ['message.received'], filters: { mailbox_ids: [a.id] } });
    const teamWide = await createHook({ url: receiver.url('/team'), event_types: ['message.received', 'message.received.spam'] });
    const bouncesOnly = await createHook({ url: receiver.url('/bounces'), event_types: ['message.bounced'] });
    const start = receiver.requests.length;
    const toB = await transact(rig.port, 'carol@example.org', [b.email], message(b.email, 'For beta'));
    assert.equal(toB.data?.code, 250, toB.data?.text);
    await receiver.waitFor(start + 1);
    const toA = await transact(rig.port, 'carol@example.org', [a.email], message(a.email, 'For alpha'));
    assert.equal(toA.data?.code, 250, toA.data?.text);
    await receiver.waitFor(start + 3);
    worker.kick();
    await worker.idle();
    const got = receiver.requests.slice(start);
    assert.equal(got.length, 3, got.map((r) => r.path).join(','));
    const byPath = (p: string) => got.filter((r) => r.path === p).map((r) => json(r).data.mailbox_id as string);
    assert.deepEqual(byPath('/scoped-a'), [a.id]);
    assert.deepEqual(byPath('/team').sort(), [a.id, b.id].sort());
    assert.deepEqual(byPath('/bounces'), []);
    const first = got.find((r) => r.path === '/scoped-a')!;
    assert.ok(verifySignature(scopedA.secret, first.raw, first.headers['x-sendmux-signature']));
    const payload = json(first);
    appValidator().validateComponent('WebhookEventPayload', payload);
    assert.equal(payload.type, 'message.received');
    assert.equal(first.headers['x-sendmux-event-type'], 'message.received');
    assert.equal(payload.data.message_id, 'Foralpha@example.org');
    assert.equal(payload.data.message_id_kind, 'rfc5322');
    assert.equal(payload.data.is_spam, false);
    assert.deepEqual(payload.data.recipients, [a.email]);
    assert.equal(payload.data.sender, 'carol@example.org');
    // The same event reaches both subscribers with one event id.
    const teamA = got.find((r) => r.path === '/team' && json(r).data.mailbox_id === a.id)!;
    assert.equal(teamA.headers['x-sendmux-event-id'], first.headers['x-sendmux-event-id']);
    assert.ok(verifySignature(teamWide.secret, teamA.raw, teamA.headers['x-sendmux-signature']));
    assert.equal((await app.api('GET', `/api/v1/webhooks/${bouncesOnly.id}/deliveries`)).body.data.length, 0);
    const filtered = await app.api('GET', `/api/v1/webhooks/${teamWide.id}/deliveries?event_type=message.received&result=success`);
    assert.equal(filtered.body.data.length, 2);
    assert.equal((await app.api('GET', `/api/v1/webhooks/${teamWide.id}/deliveries?event_type=message.received.spam`)).body.data.length, 0);
    for (const w of [scopedA, teamWide, bouncesOnly]) await app.api('DELETE', `/api/v1/webhooks/${w.id}`);
  });

  test('rotate-secret: the next delivery is signed with the new secret only', async () => {
    const w = await createHook({ url: receiver.url('/rotate'), event_types: ['sendmux.test'] });
    const rotated = await app.api('POST', `/api/v1/webhooks/${w.id}/rotate-secret`);
    assert.equal(rotated.status, 200);
    const start = receiver.requests.length;
    await app.api('POST', `/api/v1/webhooks/${w.id}/test`);
    await receiver.waitFor(start + 1);
    const req = receiver.requests[start]!;
    assert.ok(verifySignature(rotated.body.data.secret, req.raw, req.headers['x-sendmux-signature']));
    assert.ok(!verifySignature(w.secret, req.raw, req.headers['x-sendmux-signature']), 'the old secret no longer verifies');
  });

  test('the POST connects to the checked address with SNI and Host of the URL; an untrusted certificate is tls_error', async () => {
    const pinned = async (host: string) => (host === RECEIVER_NAME ? [{ address: '127.0.0.1', family: 4 }] : Promise.reject(new Error('ENOTFOUND')));
    const target = await resolveTarget(`https://${RECEIVER_NAME}:${receiver.port}/pinned?x=1`, true, pinned);
    assert.ok(typeof target !== 'string');
    const agent = new https.Agent({ keepAlive: false });
    try {
      const secureContext = createSecureContext({ ca: [...rootCertificates, readFileSync(receiver.caFile, 'utf8')] });
      const start = receiver.requests.length;
      const ok = await postOnce({ target, headers: { 'content-type': 'application/json' }, body: '{}', timeoutMs: 5000, agent, secureContext });
      assert.equal(ok.status, 200, JSON.stringify(ok));
      assert.equal(receiver.requests[start]?.headers.host, `${RECEIVER_NAME}:${receiver.port}`);
      assert.equal(receiver.requests[start]?.path, '/pinned?x=1');
      // A fresh agent: a cached TLS session from the trusted POST would skip verification.
      const plain = new https.Agent({ keepAlive: false, maxCachedSessions: 0 });
      const untrusted = await postOnce({ target, headers: {}, body: '{}', timeoutMs: 5000, agent: plain });
      plain.destroy();
      assert.deepEqual({ status: untrusted.status, error: untrusted.error }, { status: null, error: 'tls_error' });
      // The certificate is checked against the URL's name, not the address connected to.
      const wrongName = await resolveTarget(`https://other.receiver.test:${receiver.port}/`, true, async () => [{ address: '127.0.0.1', family: 4 }]);
      assert.ok(typeof wrongName !== 'string');
      const mismatch = await postOnce({ target: wrongName, headers: {}, body: '{}', timeoutMs: 5000, agent: new https.Agent({ maxCachedSessions: 0 }), secureContext });
      assert.equal(mismatch.error, 'tls_error');
      const refused = await postOnce({ target: { ...target, url: new URL(`https://${RECEIVER_NAME}:1/`) }, headers: {}, body: '{}', timeoutMs: 5000, agent, secureContext });
      assert.equal(refused.error, 'connection_refused');
    } finally {
      agent.destroy();
    }
  });

  test('SSRF guard: without MAILMUX_WEBHOOK_ALLOW_PRIVATE a loopback target is refused and recorded, not delivered', async () => {
    const cfg = app.services.config.webhooks;
    cfg.allowPrivate = false;
    try {
      const byName = await createHook({ url: receiver.url('/ssrf', 'localhost'), event_types: ['sendmux.test'] });
      const byIp = await createHook({ url: receiver.url('/ssrf', '127.0.0.1'), event_types: ['sendmux.test'] });
      const start = receiver.requests.length;
      for (const w of [byName, byIp]) assert.equal((await app.api('POST', `/api/v1/webhooks/${w.id}/test`)).status, 200);
      for (const w of [byName, byIp]) {
        let attempts: any[] = [];
        for (let i = 0; i < 100 && attempts.length === 0; i++) {
          worker.kick();
          await worker.idle();
          attempts = (await app.api('GET', `/api/v1/webhooks/${w.id}/deliveries`)).body.data;
          if (attempts.length === 0) await new Promise((r) => setTimeout(r, 20));
        }
        assert.equal(attempts.length, 1);
        assert.equal(attempts[0].result, 'permanent_failure');
        assert.equal(attempts[0].error_message, 'destination_not_allowed');
        assert.equal(attempts[0].response_status, null);
        assert.equal(attempts[0].next_retry_at, null);
        assert.equal((await app.api('GET', `/api/v1/webhooks/${w.id}`)).body.data.failing, true);
      }
      assert.equal(receiver.requests.slice(start).filter((r) => r.path === '/ssrf').length, 0);
    } finally {
      cfg.allowPrivate = true;
    }
  });
});

describeEachBackend('webhook worker wake-up', (backend) => {
  let receiver: WebhookReceiver;
  let rig: SmtpRig;
  let worker: WebhookWorker;

  before(async () => {
    receiver = new WebhookReceiver();
    await receiver.start();
    rig = await startSmtpRig(backend, { MAILMUX_WEBHOOK_ALLOW_PRIVATE: 'true', MAILMUX_WEBHOOK_CA_FILE: receiver.caFile });
    // No poll within the test: only the wake-up of a commit can start a delivery.
    worker = new WebhookWorker(rig.app.services, { pollMs: 600_000 });
    worker.start();
  });
  after(async () => {
    await worker.stop();
    await rig.close();
    await receiver.stop();
  });

  test('a commit that adds outbox rows wakes the worker; mail no webhook wants does not need it', async () => {
    const app = rig.app;
    const quiet = await createMailbox(app, 'quiet');
    const watched = await createMailbox(app, 'watched');
    const hook = await app.api('POST', '/api/v1/webhooks', { body: { url: receiver.url('/wake'), event_types: ['message.received'], filters: { mailbox_ids: [watched.id] } } });
    assert.equal(hook.status, 201, hook.text);
    await receive(app, quiet, 'Nobody listens');
    await receive(app, watched, 'Someone listens');
    // Within the receiver's deadline (10 s), far below the worker's poll.
    await receiver.waitFor(1);
    const got = receiver.requests.map((r) => json(r) as { type: string; data: { mailbox_id: string } });
    assert.deepEqual(got.map((e) => [e.type, e.data.mailbox_id]), [['message.received', watched.id]]);
  });

  test('deliveries committed in one batch each reach the webhook, once', async () => {
    const app = rig.app;
    const a = await createMailbox(app, 'batch-hook-a');
    const b = await createMailbox(app, 'batch-hook-b');
    const hook = await app.api('POST', '/api/v1/webhooks', { body: { url: receiver.url('/batch'), event_types: ['message.received'], filters: { mailbox_ids: [a.id, b.id] } } });
    assert.equal(hook.status, 201, hook.text);
    const start = receiver.requests.length;
    // Delivered together: they share batches (one transaction each), whose events fan out to the
    // same team's webhooks.
    const ids = Array.from({ length: 12 }, (_, i) => `batched-${i}@batch.test`);
    const box = (i: number): TestMailbox => (i % 2 === 0 ? a : b);
    const raws = await Promise.all(ids.map((id, i) => buildMessage({ to: box(i).email, subject: `batched ${i}`, messageId: `<${id}>` })));
    const results = await Promise.all(raws.map((raw, i) => app.services.ingest.deliver({ raw, targets: [{ mailboxId: box(i).id }], announce: { sender: 'alice@example.org' } })));
    assert.equal(results.filter((r) => r.delivered.length === 1).length, ids.length);
    await receiver.waitFor(start + ids.length);
    const got = receiver.requests.slice(start).map((r) => json(r) as { data: { mailbox_id: string; message_id: string } });
    assert.deepEqual(got.map((e) => e.data.message_id).sort(), [...ids].sort());
    for (const e of got) assert.equal(e.data.mailbox_id, box(ids.indexOf(e.data.message_id)).id);
  });
});

describeEachBackend('webhook retries', (backend) => {
  let receiver: WebhookReceiver;
  let app: TestApp;
  let worker: WebhookWorker;
  let clock: MutableClock;
  let mbx: TestMailbox;

  before(async () => {
    receiver = new WebhookReceiver();
    await receiver.start();
    clock = new MutableClock(Date.parse('2026-11-23T10:00:00Z'));
    app = await startTestApp(backend, { MAILMUX_WEBHOOK_ALLOW_PRIVATE: 'true', MAILMUX_WEBHOOK_CA_FILE: receiver.caFile, MAILMUX_WEBHOOK_TIMEOUT_SECONDS: '1' }, { clock });
    worker = new WebhookWorker(app.services, { pollMs: 100 });
    worker.start();
    mbx = await createMailbox(app, 'retry');
  });
  after(async () => {
    await worker.stop();
    await app.close();
    await receiver.stop();
  });

  /** Runs the worker over everything due now. */
  const settle = async () => {
    worker.kick();
    await worker.idle();
  };
  const attempts = async (id: string) => (await app.api('GET', `/api/v1/webhooks/${id}/deliveries`)).body.data as any[];

  test('a 500 is retried after the first backoff step; the retry carries the next attempt number and succeeds', async () => {
    const w = (await app.api('POST', '/api/v1/webhooks', { body: { url: receiver.url('/retry'), event_types: ['sendmux.test'] } })).body.data;
    receiver.answers.push({ status: 500, body: 'boom' });
    const start = receiver.requests.length;
    const t = await app.api('POST', `/api/v1/webhooks/${w.id}/test`);
    await receiver.waitFor(start + 1);
    await settle();
    let list = await attempts(w.id);
    assert.equal(list.length, 1);
    assert.equal(list[0].result, 'retrying');
    assert.equal(list[0].response_status, 500);
    assert.equal(list[0].response_body, 'boom');
    assert.equal(list[0].next_retry_at, new Date(clock.t + WEBHOOK_RETRY_DELAYS_MS[0]!).toISOString());
    // Not before it is due.
    clock.t += WEBHOOK_RETRY_DELAYS_MS[0]! - 1000;
    await settle();
    assert.equal(receiver.requests.length, start + 1);
    clock.t += 1001;
    await settle();
    await receiver.waitFor(start + 2);
    await settle();
    const retry = receiver.requests[start + 1]!;
    assert.equal(retry.headers['x-sendmux-delivery-attempt'], '2');
    assert.equal(retry.headers['x-sendmux-event-id'], t.body.data.event_id);
    assert.deepEqual(retry.raw, receiver.requests[start]!.raw, 'the same bytes on every attempt');
    list = await attempts(w.id);
    assert.deepEqual(list.map((x) => [x.delivery_attempt, x.result]), [[2, 'success'], [1, 'retrying']]);
    assert.equal((await app.api('GET', `/api/v1/webhooks/${w.id}/deliveries?result=retrying`)).body.data.length, 1);
  });

  test('a timeout is retried with the error category and no status', async () => {
    const w = (await app.api('POST', '/api/v1/webhooks', { body: { url: receiver.url('/slow'), event_types: ['sendmux.test'] } })).body.data;
    receiver.answers.push({ status: 200, delayMs: 1500 });
    await app.api('POST', `/api/v1/webhooks/${w.id}/test`);
    for (let i = 0; i < 100 && (await attempts(w.id)).length === 0; i++) {
      await settle();
      await new Promise((r) => setTimeout(r, 30));
    }
    const list = await attempts(w.id);
    assert.equal(list[0].result, 'retrying');
    assert.equal(list[0].error_message, 'timeout');
    assert.equal(list[0].response_status, null);
    assert.ok(list[0].response_ms >= 900, String(list[0].response_ms));
    await app.api('DELETE', `/api/v1/webhooks/${w.id}`);
  });

  test('after the last attempt the webhook is failing and gets no events; enabled false -> true clears it', async () => {
    const w = (await app.api('POST', '/api/v1/webhooks', { body: { url: receiver.url('/down'), event_types: ['message.received', 'sendmux.test'] } })).body.data;
    receiver.fallback = { status: 503, body: 'down' };
    try {
      const start = receiver.requests.length;
      await receive(app, mbx, 'will fail');
      for (let n = 1; n <= WEBHOOK_MAX_ATTEMPTS; n++) {
        await receiver.waitFor(start + n);
        await settle();
        if (n < WEBHOOK_MAX_ATTEMPTS) clock.t += WEBHOOK_RETRY_DELAYS_MS[n - 1]!;
      }
      const list = await attempts(w.id);
      assert.equal(list.length, WEBHOOK_MAX_ATTEMPTS);
      assert.deepEqual(list[0], { ...list[0], delivery_attempt: WEBHOOK_MAX_ATTEMPTS, result: 'failed', next_retry_at: null, response_status: 503 });
      assert.ok(list.slice(1).every((x) => x.result === 'retrying'));
      assert.deepEqual(receiver.requests.slice(start).map((r) => r.headers['x-sendmux-delivery-attempt']), ['1', '2', '3', '4', '5', '6', '7', '8']);
      const hours = (Date.parse(list[0].created_at) - Date.parse(list[list.length - 1].created_at)) / 3_600_000;
      assert.ok(hours > 23 && hours <= 24, `retries span ${hours} h`);
      const g = await app.api('GET', `/api/v1/webhooks/${w.id}`);
      assert.equal(g.body.data.failing, true);
      assert.equal(g.body.data.enabled, true);

      receiver.fallback = { status: 200, body: 'ok' };
      const quiet = receiver.requests.length;
      await receive(app, mbx, 'while failing');
      await settle();
      assert.equal(receiver.requests.length, quiet, 'a failing webhook receives no new events');
      // enabled true -> true does not clear it; false -> true does.
      assert.equal((await app.api('PATCH', `/api/v1/webhooks/${w.id}`, { body: { enabled: true } })).body.data.failing, true);
      assert.equal((await app.api('PATCH', `/api/v1/webhooks/${w.id}`, { body: { enabled: false } })).body.data.failing, true);
      const on = await app.api('PATCH', `/api/v1/webhooks/${w.id}`, { body: { enabled: true } });
      assert.equal(on.body.data.failing, false);
      await receive(app, mbx, 'after the fix');
      await receiver.waitFor(quiet + 1);
      assert.equal(json(receiver.requests[quiet]!).type, 'message.received');
    } finally {
      receiver.fallback = { status: 200, body: 'ok' };
    }
  });

  test('delete drops in-flight retries', async () => {
    const w = (await app.api('POST', '/api/v1/webhooks', { body: { url: receiver.url('/gone'), event_types: ['sendmux.test'] } })).body.data;
    receiver.answers.push({ status: 500 });
    const start = receiver.requests.length;
    await app.api('POST', `/api/v1/webhooks/${w.id}/test`);
    await receiver.waitFor(start + 1);
    await settle();
    assert.equal((await attempts(w.id))[0].result, 'retrying');
    assert.equal((await app.api('DELETE', `/api/v1/webhooks/${w.id}`)).status, 200);
    clock.t += WEBHOOK_RETRY_DELAYS_MS[0]! + 1;
    await settle();
    assert.equal(receiver.requests.length, start + 1);
    assert.equal(await app.services.store.webhooks.nextDueAt(), null);
  });

  test('attempts and payloads are kept 7 days, then the payload is gone and maintenance purges them', async () => {
    const w = (await app.api('POST', '/api/v1/webhooks', { body: { url: receiver.url('/old'), event_types: ['sendmux.test'] } })).body.data;
    const start = receiver.requests.length;
    await app.api('POST', `/api/v1/webhooks/${w.id}/test`);
    await receiver.waitFor(start + 1);
    await settle();
    const [d] = await attempts(w.id);
    assert.equal(Date.parse(d.payload_expires_at) - Date.parse(d.created_at), 7 * 24 * 3_600_000);
    clock.t += 7 * 24 * 3_600_000 + 1000;
    const later = await attempts(w.id);
    assert.equal(later[0].payload_available, false);
    const p = await app.api('GET', `/api/v1/webhooks/${w.id}/deliveries/${d.id}/payload`);
    assert.equal(p.status, 404);
    assert.ok((await app.services.webhooks.purgeExpired()) > 0);
    assert.deepEqual(await attempts(w.id), []);
  });
});

describeEachBackend('webhooks with two processes on one database', (backend) => {
  if (backend.name !== 'postgres') return;
  let receiver: WebhookReceiver;
  const procs: { services: Services; worker: WebhookWorker; close(): Promise<void> }[] = [];
  let drop: () => Promise<void>;
  let teamId: string;
  let dns: LoopbackDns;
  let smtp: InboundSmtp | null = null;

  before(async () => {
    receiver = new WebhookReceiver();
    await receiver.start();
    dns = new LoopbackDns();
    const dnsAddress = await dns.start();
    const db = await backend.provision();
    drop = db.drop;
    const config = loadConfig({
      MAILMUX_DATA_DIR: db.dataDir,
      MAILMUX_DATABASE_URL: db.databaseUrl!,
      MAILMUX_DEFAULT_DOMAIN: 'agents.mailmux.test',
      MAILMUX_LOG_LEVEL: 'silent',
      MAILMUX_WEBHOOK_ALLOW_PRIVATE: 'true',
      MAILMUX_WEBHOOK_CA_FILE: receiver.caFile,
      MAILMUX_WEBHOOK_CONCURRENCY: '4',
      MAILMUX_DNS_SERVERS: dnsAddress,
    });
    for (let i = 0; i < 2; i++) {
      const { store, services } = await openServices(config, { log: silentLogger, pgSchema: db.pgSchema! });
      await services.events.start();
      const worker = new WebhookWorker(services, { pollMs: 50 });
      worker.start();
      procs.push({
        services,
        worker,
        async close() {
          await worker.stop();
          await services.events.stop();
          await services.ingest.close();
          await store.close();
        },
      });
    }
    teamId = (await procs[0]!.services.teams.bootstrap())!.teamId;
  });
  after(async () => {
    await smtp?.close();
    for (const p of procs) await p.close();
    await dns.stop();
    await drop();
    await receiver.stop();
  });

  test('each event reaches each subscribed webhook exactly once', async () => {
    const [p1, p2] = procs as [(typeof procs)[0], (typeof procs)[0]];
    const w1 = await p1.services.webhooks.create(teamId, { url: receiver.url('/one'), event_types: ['sendmux.test'] });
    const w2 = await p2.services.webhooks.create(teamId, { url: receiver.url('/two'), event_types: ['sendmux.test'] });
    const events: string[] = [];
    const N = 40;
    await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const p = i % 2 === 0 ? p1 : p2;
        const w = i % 4 < 2 ? w1 : w2;
        events.push((await p.services.webhooks.test(teamId, w.id)).event_id);
      }),
    );
    await receiver.waitFor(N, 30_000);
    // Give a duplicate every chance to show up.
    for (const p of procs) {
      p.worker.kick();
      await p.worker.idle();
    }
    await new Promise((r) => setTimeout(r, 300));
    const ids = receiver.requests.map((r) => r.headers['x-sendmux-event-id'] as string);
    assert.equal(ids.length, N);
    assert.deepEqual([...new Set(ids)].sort(), [...events].sort());
    assert.ok(receiver.requests.every((r) => r.headers['x-sendmux-delivery-attempt'] === '1'));
  });
  test('mail accepted over SMTP by one process is delivered once per subscribed webhook', async () => {
    const [p1, p2] = procs as [(typeof procs)[0], (typeof procs)[0]];
    await p1.services.domains.ensureDefaultDomain();
    const created = await p2.services.mailboxes.create(teamId, { email: 'shared@agents.mailmux.test' });
    const mailboxId = created.mailbox.id;
    await p1.services.webhooks.create(teamId, { url: receiver.url('/inbound-a'), event_types: ['message.received'] });
    await p2.services.webhooks.create(teamId, { url: receiver.url('/inbound-b'), event_types: ['message.received'], filters: { mailbox_ids: [mailboxId] } });
    smtp = await startInboundSmtp(p1.services, { host: '127.0.0.1', port: 0, tls: await loadTlsMaterial(p1.services.config) });
    const start = receiver.requests.length;
    const M = 10;
    for (let i = 0; i < M; i++) {
      const r = await transact(smtp.port, 'carol@example.org', ['shared@agents.mailmux.test'], message('shared@agents.mailmux.test', `Shared ${i}`));
      assert.equal(r.data?.code, 250, r.data?.text);
    }
    await receiver.waitFor(start + 2 * M, 30_000);
    for (const p of procs) {
      p.worker.kick();
      await p.worker.idle();
    }
    await new Promise((r) => setTimeout(r, 300));
    const got = receiver.requests.slice(start);
    assert.equal(got.length, 2 * M);
    const pairs = new Set(got.map((r) => `${r.path} ${String(r.headers['x-sendmux-event-id'])}`));
    assert.equal(pairs.size, 2 * M, 'no (webhook, event) pair twice');
    assert.equal(new Set(got.map((r) => r.headers['x-sendmux-event-id'])).size, M);
    assert.ok(got.every((r) => json(r).data.mailbox_id === mailboxId));
  });
});
