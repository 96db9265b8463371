// Outbound timing on each backend: delivery waits for the undo window (send_at), a recipient that
// keeps answering 4xx bounces once MAILMUX_SEND_RETRY_HOURS has passed (Transient, with a DSN), and
// a slow domain gets no more than MAILMUX_OUTBOUND_DOMAIN_CONCURRENCY sessions at once.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { describeEachBackend } from '../helpers/backends.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { LoopbackDns } from '../helpers/dns-server.ts';
import { buildMessage, createMailbox, type TestMailbox } from '../helpers/mail.ts';
import { OutboundWorker } from '../../src/workers/outbound.ts';
import { SmtpPeer, waitFor } from './peers.ts';

describeEachBackend('outbound undo window and retry expiry', (backend) => {
  let dns: LoopbackDns;
  let mx: SmtpPeer;
  let app: TestApp;
  let worker: OutboundWorker;
  let sender: TestMailbox;

  before(async () => {
    dns = new LoopbackDns();
    const address = await dns.start();
    mx = new SmtpPeer();
    await mx.start();
    dns.zone.mx.set('slow.example', [{ exchange: 'mx.slow.example', priority: 10 }]);
    dns.zone.a.set('mx.slow.example', ['127.0.0.1']);
    app = await startTestApp(backend, {
      MAILMUX_DNS_SERVERS: address,
      MAILMUX_OUTBOUND_MX_PORT: String(mx.port),
      MAILMUX_SEND_RETRY_BASE_SECONDS: '1',
      // 4 seconds of retries.
      MAILMUX_SEND_RETRY_HOURS: String(4 / 3600),
      MAILMUX_SEND_UNDO_SECONDS: '2',
      MAILMUX_OUTBOUND_DOMAIN_CONCURRENCY: '2',
    });
    sender = await createMailbox(app, 'timing');
    worker = new OutboundWorker(app.services);
    await worker.start();
  });

  after(async () => {
    await worker.stop();
    await app.close();
    await mx.stop();
    await dns.stop();
  });

  async function submit(to: string, subject: string) {
    const raw = await buildMessage({ from: sender.email, to, subject, text: 'hi' });
    return app.services.outbound.submit({ mailboxId: sender.id, raw, envelopeFrom: sender.email, recipients: [to], source: 'sending_api' });
  }

  it('holds delivery until the undo window ends, then delivers', async () => {
    const started = Date.now();
    const r = await submit('ok@slow.example', 'Undo window');
    const pending = await app.api('GET', `/api/v1/mailbox/submissions/${r.submissionId}`, { token: sender.key });
    assert.equal(pending.body.data.undo_status, 'pending');
    await waitFor(() => mx.received.length === 1, 15_000, 'delivery');
    assert.ok(Date.now() - started >= 1900, 'not before send_at');
    const done = await app.api('GET', `/api/v1/mailbox/submissions/${r.submissionId}`, { token: sender.key });
    assert.equal(done.body.data.undo_status, 'final');
  });

  it('holds the mail of a suspended mailbox until it is resumed', async () => {
    mx.received.length = 0;
    const r = await submit('held@slow.example', 'Held while suspended');
    assert.equal((await app.api('POST', `/api/v1/mailboxes/${sender.id}/suspend`)).status, 200);
    // Past the undo window and a retry: nothing leaves.
    await new Promise((res) => setTimeout(res, 3500));
    assert.equal(mx.received.length, 0);
    const row = (await app.services.store.outbound.forSubmission(r.submissionId))[0]!;
    assert.equal(row.status, 'deferred');
    assert.match(row.smtp_reply ?? '', /suspended/);
    assert.equal((await app.api('POST', `/api/v1/mailboxes/${sender.id}/resume`)).status, 200);
    await waitFor(() => mx.received.length === 1, 15_000, 'delivery after resume');
  });

  it('keeps at most the per-domain limit of sessions open to one domain', async () => {
    mx.received.length = 0;
    mx.holdReplies = true;
    const subs = [];
    for (let i = 0; i < 5; i++) subs.push(await submit(`p${i}@slow.example`, `Parallel ${i}`));
    await waitFor(() => mx.heldCount === 2, 15_000, 'two held sessions');
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(mx.heldCount, 2, 'a third session to the same domain waited');
    mx.release();
    await waitFor(() => mx.received.filter((m) => m.confirmed).length === 5, 15_000, 'all five');
  });

  it('bounces as Transient once the retry time is over', async () => {
    for (let i = 0; i < 50; i++) mx.faults.push({ at: 'rcpt', code: 451, message: '4.2.0 greylisted' });
    const r = await submit('grey@slow.example', 'Greylisted forever');
    await waitFor(async () => {
      const s = await app.api('GET', `/api/v1/mailbox/submissions/${r.submissionId}`, { token: sender.key });
      return s.body.data.delivery_status[0].delivered === 'no';
    }, 30_000, 'bounce');
    const rows = (await app.services.store.events.after(0, 1000)).filter((e) => JSON.parse(e.data).sendmux_message_id === r.emailId);
    assert.deepEqual(rows.map((e) => e.type), ['message.delivery_delayed', 'message.bounced']);
    assert.equal(JSON.parse(rows[1]!.data).bounce_type, 'Transient');
    const inbox = await app.api('GET', '/api/v1/mailbox/messages?q=greylisted', { token: sender.key });
    assert.ok(inbox.body.data.some((m: { subject: string }) => m.subject === 'Undelivered Mail Returned to Sender'), inbox.text);
    mx.faults.length = 0;
  });
});
