// Outbound delivery end to end on each backend: submit() -> the durable queue -> the worker ->
// real SMTP peers on loopback (a remote MX found through a loopback DNS server, and relays), with
// DKIM verified by mailauth against that DNS, retries, bounces (DSN into the sender's inbox),
// events, submissions and delivery logs through the HTTP API (validated against the spec).
import assert from 'node:assert/strict';
import { after, before, beforeEach, it } from 'node:test';
import { authenticate } from 'mailauth';
import { describeEachBackend } from '../helpers/backends.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { LoopbackDns } from '../helpers/dns-server.ts';
import { buildMessage, createMailbox, type TestMailbox } from '../helpers/mail.ts';
import { OutboundWorker } from '../../src/workers/outbound.ts';
import { SmtpPeer, waitFor } from './peers.ts';

const REMOTE = 'remote.example';

describeEachBackend('outbound delivery', (backend) => {
  let dns: LoopbackDns;
  let mx: SmtpPeer;
  let relay: SmtpPeer;
  let app: TestApp;
  let worker: OutboundWorker;
  let sender: TestMailbox;
  let dnsAddress: string;

  before(async () => {
    dns = new LoopbackDns();
    dnsAddress = await dns.start();
    mx = new SmtpPeer();
    await mx.start();
    relay = new SmtpPeer({ auth: { user: 'relay-user', pass: 'relay-pass' } });
    await relay.start();
    dns.zone.mx.set(REMOTE, [{ exchange: `mx.${REMOTE}`, priority: 10 }]);
    dns.zone.a.set(`mx.${REMOTE}`, ['127.0.0.1']);
    app = await startTestApp(backend, {
      MAILMUX_DNS_SERVERS: dnsAddress,
      MAILMUX_OUTBOUND_MX_PORT: String(mx.port),
      MAILMUX_SEND_RETRY_BASE_SECONDS: '1',
      MAILMUX_OUTBOUND_TIMEOUT_SECONDS: '2',
    });
    sender = await createMailbox(app, 'sender');
    // The default domain's DKIM key, published where verifiers look for it.
    const domain = (await app.services.store.domains.byName(app.config.defaultDomain))!;
    dns.zone.txt.set(`${domain.dkim_selector}._domainkey.${domain.domain}`, [`v=DKIM1; k=rsa; p=${domain.dkim_public_key.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '')}`]);
    worker = new OutboundWorker(app.services);
    await worker.start();
  });

  after(async () => {
    await worker.stop();
    await app.close();
    await mx.stop();
    await relay.stop();
    await dns.stop();
  });

  beforeEach(() => {
    mx.received.length = 0;
    mx.faults.length = 0;
    relay.received.length = 0;
    relay.faults.length = 0;
  });

  async function send(to: string[], opts: { subject?: string; bcc?: string[]; size?: number } = {}) {
    const raw = await buildMessage({
      from: `Sender <${sender.email}>`,
      to: to.filter((t) => !opts.bcc?.includes(t)),
      subject: opts.subject ?? 'Outbound test',
      text: opts.size ? 'x'.repeat(opts.size) : 'Hello from Mailmux.\n',
      messageId: `<${Math.random().toString(36).slice(2)}@${app.config.defaultDomain}>`,
      ...(opts.bcc ? { headers: { Bcc: opts.bcc.join(', ') } } : {}),
    });
    return app.services.outbound.submit({ mailboxId: sender.id, raw, envelopeFrom: sender.email, recipients: to, source: 'mailbox_api' });
  }

  async function submission(id: string) {
    const res = await app.api('GET', `/api/v1/mailbox/submissions/${id}`, { token: sender.key });
    assert.equal(res.status, 200, res.text);
    return res.body.data;
  }

  async function settled(id: string) {
    await waitFor(async () => (await submission(id)).delivery_status.every((d: { delivered: string }) => d.delivered !== 'queued'), 30_000, 'final delivery status');
    return submission(id);
  }

  async function events(emailId: string) {
    const rows = await collectEvents(app);
    return rows.filter((e) => JSON.parse(e.data).sendmux_message_id === emailId).map((e) => ({ type: e.type, data: JSON.parse(e.data) }));
  }

  it('delivers to the recipient MX, DKIM-signed, without Bcc, and records it everywhere', async () => {
    const r = await send([`bob@${REMOTE}`, `hidden@${REMOTE}`], { bcc: [`hidden@${REMOTE}`] });
    assert.match(r.submissionId, /^sub_[a-z0-9]{24}$/);
    assert.match(r.emailId, /^eml_[a-z0-9]{24}$/);
    const sub = await settled(r.submissionId);
    assert.deepEqual(sub.delivery_status.map((d: { delivered: string }) => d.delivered), ['yes', 'yes']);
    assert.equal(sub.email_id, r.messageId);
    assert.equal(sub.undo_status, 'final');
    assert.equal(mx.received.length, 1);
    const got = mx.received[0]!;
    assert.deepEqual(got.to.sort(), [`bob@${REMOTE}`, `hidden@${REMOTE}`]);
    assert.equal(got.from, sender.email);
    assert.doesNotMatch(got.raw.toString('latin1').split('\r\n\r\n')[0]!, /^bcc:/im);
    // DKIM verifies against the loopback DNS.
    const auth = await authenticate(got.raw, {
      ip: '127.0.0.1',
      helo: 'mx.mailmux.test',
      sender: sender.email,
      mta: 'remote',
      resolver: dnsResolver(dnsAddress),
    });
    const dkim = auth.dkim.results[0]!;
    assert.equal(dkim.status.result, 'pass', JSON.stringify(dkim.status));
    assert.equal(dkim.signingDomain, app.config.defaultDomain);

    // The Sent copy, the delivery log, the list and the events.
    const list = await app.api('GET', '/api/v1/mailbox/submissions?sort_by=send_at&sort_direction=desc', { token: sender.key });
    assert.equal(list.status, 200);
    assert.ok(list.body.data.some((s: { id: string }) => s.id === r.submissionId));
    const logs = await app.api('GET', `/api/v1/emails/logs?search=bob@${REMOTE}`);
    assert.equal(logs.status, 200);
    const log = logs.body.data.find((l: { status: string }) => l.status === 'sent');
    assert.ok(log, logs.text);
    const detail = await app.api('GET', `/api/v1/emails/logs/${log.id}`);
    assert.equal(detail.status, 200);
    assert.equal(detail.body.data.accepted_recipient_count, 2);
    assert.deepEqual(detail.body.data.recipients.map((x: { type: string; status: string }) => [x.type, x.status]), [['to', 'accepted'], ['bcc', 'accepted']]);
    const again = await app.api('GET', `/api/v1/emails/logs/${log.id}`, { headers: { 'if-none-match': String(detail.headers.etag) } });
    assert.equal(again.status, 304);
    const ev = await events(r.emailId);
    assert.deepEqual(ev.map((e) => e.type), ['message.delivered']);
    assert.deepEqual(ev[0]!.data.recipients.sort(), [`bob@${REMOTE}`, `hidden@${REMOTE}`]);
    const metrics = await app.api('GET', '/api/v1/emails/metrics?window=24h&granularity=hourly');
    assert.equal(metrics.status, 200);
    assert.ok(metrics.body.data.summary.sent >= 1);
  });

  it('retries 421/451 with backoff, reports the delay once, then delivers', async () => {
    mx.faults.push({ at: 'rcpt', code: 451, message: '4.7.1 try later' }, { at: 'data', code: 421, message: '4.3.0 busy' });
    const r = await send([`carol@${REMOTE}`]);
    const sub = await settled(r.submissionId);
    assert.equal(sub.delivery_status[0].delivered, 'yes');
    assert.equal(mx.received.filter((m) => m.confirmed).length, 1);
    const ev = await events(r.emailId);
    assert.deepEqual(ev.map((e) => e.type), ['message.delivery_delayed', 'message.delivered']);
    const log = (await app.api('GET', `/api/v1/emails/logs?search=${r.emailId}`)).body.data[0];
    assert.equal(log.status, 'sent');
    assert.equal(log.attempts, 3);
  });

  it('fails a 550 at once with message.bounced and a DSN in the sender inbox', async () => {
    mx.faults.push({ at: 'rcpt', code: 550, message: '5.1.1 no such user' });
    const r = await send([`nobody@${REMOTE}`], { subject: 'Will bounce' });
    const sub = await settled(r.submissionId);
    assert.equal(sub.delivery_status[0].delivered, 'no');
    assert.match(sub.delivery_status[0].smtp_reply, /550/);
    const ev = await events(r.emailId);
    assert.deepEqual(ev.map((e) => e.type), ['message.bounced']);
    assert.equal(ev[0]!.data.bounce_type, 'Permanent');
    const inbox = await app.api('GET', '/api/v1/mailbox/messages?q=Undelivered', { token: sender.key });
    const dsn = inbox.body.data.find((m: { subject: string }) => m.subject === 'Undelivered Mail Returned to Sender');
    assert.ok(dsn, inbox.text);
    const raw = await app.api('GET', `/api/v1/mailbox/messages/${dsn.id}/body?part=text`, { token: sender.key });
    assert.match(raw.text, /nobody@remote\.example/);
    const log = (await app.api('GET', `/api/v1/emails/logs?status=failed&search=${r.emailId}`)).body.data[0];
    assert.equal(log.status, 'failed');
  });

  it('retries a connection dropped mid-DATA; never resends after an uncertain end of data', async () => {
    mx.faults.push({ at: 'drop-mid-data' });
    const big = await send([`dave@${REMOTE}`], { size: 6_000_000 });
    const sub = await settled(big.submissionId);
    assert.equal(sub.delivery_status[0].delivered, 'yes');
    assert.equal(mx.received.filter((m) => m.to.includes(`dave@${REMOTE}`)).length, 1);

    mx.faults.push({ at: 'drop-after-data' });
    const r = await send([`erin@${REMOTE}`]);
    const sub2 = await settled(r.submissionId);
    assert.equal(sub2.delivery_status[0].delivered, 'unknown');
    await new Promise((res) => setTimeout(res, 2500));
    assert.equal(mx.received.filter((m) => m.to.includes(`erin@${REMOTE}`)).length, 1, 'not sent a second time');
    const ev = await events(r.emailId);
    assert.equal(ev.at(-1)!.data.bounce_type, 'Undetermined');
  });

  it('treats a server slower than the timeout as temporary and delivers on retry', async () => {
    mx.faults.push({ at: 'slow-greeting', ms: 3500 });
    const r = await send([`frank@${REMOTE}`]);
    const sub = await settled(r.submissionId);
    assert.equal(sub.delivery_status[0].delivered, 'yes');
    const ev = await events(r.emailId);
    assert.deepEqual(ev.map((e) => e.type), ['message.delivery_delayed', 'message.delivered']);
  });

  it('delivers to a hosted mailbox locally, with message.received', async () => {
    const local = await createMailbox(app, 'local-rcpt');
    const r = await send([local.email]);
    const sub = await settled(r.submissionId);
    assert.equal(sub.delivery_status[0].delivered, 'yes');
    assert.equal(mx.received.length, 0);
    const inbox = await app.api('GET', '/api/v1/mailbox/messages?subject=Outbound', { token: local.key });
    assert.equal(inbox.body.data.length, 1);
    const rows = await collectEvents(app);
    assert.ok(rows.some((e) => e.type === 'message.received' && e.mailbox_id === local.id));
  });

  it('routes through providers: test, failover on connection errors, auth failure marks the account', async () => {
    const bad = await app.api('POST', '/api/v1/providers', {
      body: { name: 'Down relay', smtp_host: '127.0.0.1', smtp_port: 1, smtp_protocol: 'none', smtp_username: 'u', smtp_password: 'p', percentage: 100 },
    });
    assert.equal(bad.status, 201, bad.text);
    assert.equal(bad.body.data.has_smtp_password, true);
    assert.equal('smtp_password' in bad.body.data, false);
    const good = await app.api('POST', '/api/v1/providers', {
      headers: { 'idempotency-key': 'prov-good-1' },
      body: { name: 'Loopback relay', smtp_host: '127.0.0.1', smtp_port: relay.port, smtp_protocol: 'none', smtp_username: 'relay-user', smtp_password: 'relay-pass', percentage: 0 },
    });
    assert.equal(good.status, 201, good.text);
    const test = await app.api('POST', `/api/v1/providers/${good.body.data.id}/test`);
    assert.equal(test.status, 200);
    assert.equal(test.body.data.success, true, test.text);
    const testBad = await app.api('POST', `/api/v1/providers/${bad.body.data.id}/test`);
    assert.equal(testBad.body.data.success, false);

    const r = await send([`gina@${REMOTE}`]);
    const sub = await settled(r.submissionId);
    assert.equal(sub.delivery_status[0].delivered, 'yes');
    assert.equal(relay.received.length, 1);
    assert.equal(relay.received[0]!.user, 'relay-user');
    assert.equal(mx.received.length, 0);
    const log = (await app.api('GET', `/api/v1/emails/logs?provider_id=${good.body.data.id}`)).body.data[0];
    assert.equal(log.provider_name, 'Loopback relay');
    const stats = await app.api('GET', '/api/v1/providers/stats');
    assert.equal(stats.status, 200, stats.text);
    assert.equal(stats.body.data.total, 2);
    const usage = await app.api('GET', '/api/v1/providers/usage');
    assert.equal(usage.status, 200, usage.text);
    assert.equal(usage.body.data.providers.find((p: { provider_id: string }) => p.provider_id === good.body.data.id).sent_7d, 1);
    const listed = await app.api('GET', '/api/v1/providers?status=active&type=smtp&limit=1');
    assert.equal(listed.body.data.length, 1);
    assert.equal(listed.body.pagination.has_more, true);

    // Wrong password: the account is marked and the next one (none left) ... the message waits.
    const patched = await app.api('PATCH', `/api/v1/providers/${good.body.data.id}`, { body: { smtp_password: 'wrong' } });
    assert.equal(patched.status, 200);
    await app.api('POST', `/api/v1/providers/${bad.body.data.id}/deactivate`);
    const r2 = await send([`hank@${REMOTE}`]);
    await waitFor(async () => (await app.api('GET', `/api/v1/providers/${good.body.data.id}`)).body.data.status === 'error', 20_000, 'provider marked error');
    const sub2 = await submission(r2.submissionId);
    assert.notEqual(sub2.delivery_status[0].delivered, 'yes');

    for (const id of [good.body.data.id, bad.body.data.id]) assert.equal((await app.api('DELETE', `/api/v1/providers/${id}`)).status, 200);
    // With no provider left, the queued message goes straight to the MX.
    const sub3 = await settled(r2.submissionId);
    assert.equal(sub3.delivery_status[0].delivered, 'yes');
  });

  it('routes by send_scope: providers only through the listed accounts; none usable is rejected with a DSN', async () => {
    const prov = await app.api('POST', '/api/v1/providers', {
      body: { name: 'Scoped relay', smtp_host: '127.0.0.1', smtp_port: relay.port, smtp_protocol: 'none', smtp_username: 'relay-user', smtp_password: 'relay-pass' },
    });
    assert.equal(prov.status, 201);
    const scoped = await app.api('PATCH', `/api/v1/mailboxes/${sender.id}`, { body: { send_scope: { type: 'providers', provider_public_ids: [prov.body.data.id] } } });
    assert.equal(scoped.status, 200, scoped.text);
    const r = await send([`ivy@${REMOTE}`]);
    assert.equal((await settled(r.submissionId)).delivery_status[0].delivered, 'yes');
    assert.equal(relay.received.length, 1);

    await app.api('POST', `/api/v1/providers/${prov.body.data.id}/deactivate`);
    const r2 = await send([`jay@${REMOTE}`]);
    const sub = await settled(r2.submissionId);
    assert.equal(sub.delivery_status[0].delivered, 'no');
    const ev = await events(r2.emailId);
    assert.deepEqual(ev.map((e) => e.type), ['message.rejected']);
    const log = (await app.api('GET', `/api/v1/emails/logs?status=rejected&search=${r2.emailId}`)).body.data[0];
    assert.equal(log.status, 'rejected');
    assert.equal(mx.received.length, 0);
    // The 550 test's bounce and this one.
    const dsns = await app.api('GET', '/api/v1/mailbox/messages?subject=Undelivered', { token: sender.key });
    assert.equal(dsns.body.data.filter((m: { subject: string }) => m.subject === 'Undelivered Mail Returned to Sender').length, 2, dsns.text);
    await app.api('PATCH', `/api/v1/mailboxes/${sender.id}`, { body: { send_scope: { type: 'all' } } });
    await app.api('DELETE', `/api/v1/providers/${prov.body.data.id}`);
  });

  it('holds messages back when every account is at its quota', async () => {
    const prov = await app.api('POST', '/api/v1/providers', {
      body: { name: 'Quota relay', smtp_host: '127.0.0.1', smtp_port: relay.port, smtp_protocol: 'none', smtp_username: 'relay-user', smtp_password: 'relay-pass', quotas: { per_minute: 1, per_day: { min: 5, max: 10 } } },
    });
    assert.equal(prov.status, 201, prov.text);
    assert.deepEqual(prov.body.data.quotas.per_minute, { min: 1, max: 1 });
    // Quota windows are clock minutes: both sends must fall in one, or the second is not held back.
    const intoMinute = app.services.clock.now() % 60_000;
    if (intoMinute > 45_000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 50));
    const first = await send([`kim@${REMOTE}`]);
    assert.equal((await settled(first.submissionId)).delivery_status[0].delivered, 'yes');
    const second = await send([`lee@${REMOTE}`]);
    await waitFor(async () => /quota/.test((await submission(second.submissionId)).delivery_status[0].smtp_reply ?? ''), 10_000, 'quota deferral');
    assert.equal(relay.received.length, 1);
    await app.api('DELETE', `/api/v1/providers/${prov.body.data.id}`);
    assert.equal((await settled(second.submissionId)).delivery_status[0].delivered, 'yes');
    assert.equal(mx.received.length, 1);
  });
});

async function collectEvents(app: TestApp): Promise<{ type: string; data: string; mailbox_id: string | null }[]> {
  const rows = await app.services.store.events.after(0, 10_000);
  return rows as unknown as { type: string; data: string; mailbox_id: string | null }[];
}

/** A mailauth resolver that asks the loopback DNS server. */
function dnsResolver(address: string): (name: string, rr: string) => Promise<any> {
  const [host, port] = address.split(':');
  return async (name: string, rr: string): Promise<any> => {
    const { Resolver } = await import('node:dns/promises');
    const r = new Resolver();
    r.setServers([`${host}:${port}`]);
    if (rr === 'TXT') return r.resolveTxt(name);
    if (rr === 'MX') return r.resolveMx(name);
    if (rr === 'A') return r.resolve4(name);
    const err = Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    throw err;
  };
}
