// GET /mailbox/events: received mail on a real SSE socket, the event_types filter, resume by
// Last-Event-ID / last_event_id with replay from the event log, sync_required, the per-credential
// cap, isolation between mailboxes, and events only after commit.
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describeEachBackend } from '../helpers/backends.ts';
import { appValidator, startTestApp, type TestApp } from '../helpers/app.ts';
import { buildMessage, createMailbox, type TestMailbox, type TestMessage } from '../helpers/mail.ts';
import { openSse, type SseFrame, type SseStream } from '../helpers/sse.ts';
import { startSmtpRig, transact, type SmtpRig } from '../helpers/smtp.ts';

/** Delivers as inbound mail does: with message.received events. */
async function receive(app: TestApp, mb: TestMailbox, m: TestMessage, opts: { spam?: boolean } = {}): Promise<string> {
  const raw = await buildMessage({ to: mb.email, ...m });
  const r = await app.services.ingest.deliver({
    raw,
    targets: [{ mailboxId: mb.id, recipients: [mb.email] }],
    announce: { sender: 'bounce@example.org' },
    ...(opts.spam ? { spam: { isSpam: true, score: 9 } } : {}),
  });
  return r.delivered[0]!.messageId;
}

function eventOf(f: SseFrame): any {
  assert.ok(f.data, 'frame has data');
  const e = JSON.parse(f.data);
  appValidator().validateComponent('MailboxRealtimeEvent', e);
  return e;
}

describeEachBackend('SSE /mailbox/events', (backend) => {
  let app: TestApp;
  let base: string;
  let a: TestMailbox;
  let b: TestMailbox;
  const open: SseStream[] = [];
  const sse = async (mb: TestMailbox, query = '', headers: Record<string, string> = {}): Promise<SseStream> => {
    const s = await openSse(`${base}/api/v1/mailbox/events${query}`, mb.key, headers);
    open.push(s);
    return s;
  };

  before(async () => {
    app = await startTestApp(backend, { MAILMUX_SSE_MAX_STREAMS_PER_KEY: '3' });
    await app.http.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.http.server.address() as AddressInfo).port}`;
    a = await createMailbox(app, 'stream-a');
    b = await createMailbox(app, 'stream-b');
  });
  after(async () => {
    for (const s of open) s.close();
    await app.close();
  });
  // Each test starts with no stream open (the server notices a closed socket a moment later).
  beforeEach(async () => {
    for (const s of open) s.close();
    for (let i = 0; i < 100 && app.services.realtime.openStreams > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(app.services.realtime.openStreams, 0);
  });

  test('a received message arrives as message.received with the capped body snapshot and attachment links', async () => {
    const s = await sse(a);
    assert.equal(s.status, 200);
    assert.match(String(s.headers['content-type']), /^text\/event-stream/);
    const hello = await s.next({ comments: true });
    assert.equal(hello.comment, 'connected');

    const big = 'x'.repeat(20_000);
    const id = await receive(app, a, { subject: 'Live one', text: `start ${big}`, attachments: [{ filename: 'a.txt', content: 'attached' }] });
    const f = await s.next();
    assert.equal(f.event, 'message.received');
    assert.match(f.id ?? '', /^evt_[a-z0-9]{24}$/);
    const e = eventOf(f);
    assert.equal(e.event_type, 'message.received');
    assert.equal(e.mailbox_id, a.id);
    assert.equal(e.team_public_id, app.teamId);
    assert.equal(e.sender, 'bounce@example.org');
    assert.deepEqual(e.recipients, [a.email]);
    assert.equal(e.is_spam, false);
    assert.equal(e.message_id_kind, 'rfc5322');
    assert.equal(e.message.id, id);
    assert.equal(e.message.subject, 'Live one');
    assert.equal(e.message.body.is_truncated, true);
    assert.equal(e.message.body.max_bytes, 16384);
    assert.ok(Buffer.byteLength(e.message.body.text) <= 16384 && e.message.body.text.startsWith('start xxx'));
    assert.equal(e.message.attachments.length, 1);
    assert.equal(e.message.attachments[0].filename, 'a.txt');
    // The link in the event downloads the attachment.
    const dl = await fetch(e.message.attachments[0].download_url.replace(app.config.publicUrl, base));
    assert.equal(dl.status, 200);
    assert.equal(await dl.text(), 'attached');
    s.close();
  });

  test('event_types filters; spam arrives as message.received.spam', async () => {
    const spamOnly = await sse(a, '?event_types=message.received.spam');
    const all = await sse(a);
    await receive(app, a, { subject: 'normal' });
    await receive(app, a, { subject: 'spammy' }, { spam: true });
    const f = await spamOnly.next();
    assert.equal(f.event, 'message.received.spam');
    const e = eventOf(f);
    assert.equal(e.is_spam, true);
    assert.equal(e.message.subject, 'spammy');
    assert.deepEqual([(await all.next()).event, (await all.next()).event], ['message.received', 'message.received.spam']);
    spamOnly.close();
    all.close();
  });

  test('resume by Last-Event-ID or last_event_id replays what was missed, then continues live', async () => {
    const s = await sse(a);
    await receive(app, a, { subject: 'r1' });
    const first = await s.next();
    s.close();
    await receive(app, a, { subject: 'r2' });
    await receive(app, a, { subject: 'r3' });

    const missed = ['r2', 'r3'];
    for (const how of ['header', 'query'] as const) {
      const resumed = how === 'header' ? await sse(a, '', { 'last-event-id': first.id! }) : await sse(a, `?last_event_id=${first.id}`);
      const replayed: string[] = [];
      for (const _ of missed) replayed.push(eventOf(await resumed.next()).message.subject);
      assert.deepEqual(replayed, missed);
      await receive(app, a, { subject: `live-${how}` });
      assert.equal(eventOf(await resumed.next()).message.subject, `live-${how}`);
      missed.push(`live-${how}`);
      resumed.close();
    }
  });

  test('a replayed event carries the body of its message; a message deleted since is replayed without one', async () => {
    const s = await sse(a);
    await receive(app, a, { subject: 'mark' });
    const mark = await s.next();
    s.close();
    const keptId = await receive(app, a, { subject: 'kept', text: 'the kept body', html: '<p>the kept html</p>' });
    const goneId = await receive(app, a, { subject: 'gone', text: 'the deleted body' });
    const del = await app.api('DELETE', `/api/v1/mailbox/messages/${goneId}?permanent=true`, { token: a.key });
    assert.equal(del.status, 200);

    const resumed = await sse(a, `?last_event_id=${mark.id}`);
    const kept = eventOf(await resumed.next());
    assert.equal(kept.message.id, keptId);
    assert.equal(kept.message.body.text.trim(), 'the kept body');
    assert.match(kept.message.body.html, /the kept html/);
    assert.equal(kept.message.body.is_truncated, false);
    const gone = eventOf(await resumed.next());
    assert.equal(gone.message.id, goneId);
    assert.deepEqual(gone.message.body, { text: null, html: null, is_truncated: false, max_bytes: 16384 });
  });

  test('an unknown or foreign Last-Event-ID gets sync_required', async () => {
    const s = await sse(b, '', { 'last-event-id': 'evt_aaaaaaaaaaaaaaaaaaaaaaaa' });
    const f = await s.next();
    assert.equal(f.event, 'sync_required');
    const e = eventOf(f);
    assert.equal(e.event_type, 'sync_required');
    assert.equal(e.mailbox_id, b.id);
    assert.equal(e.message, null);
    s.close();

    // An event id of mailbox A does not replay A's mail to B.
    const sa = await sse(a);
    await receive(app, a, { subject: 'private to a' });
    const fa = await sa.next();
    sa.close();
    const sb = await sse(b, `?last_event_id=${fa.id}`);
    assert.equal((await sb.next()).event, 'sync_required');
    sb.close();
  });

  test('a stream sees only its own mailbox', async () => {
    const sb = await sse(b);
    await receive(app, a, { subject: 'for a only' });
    await receive(app, b, { subject: 'for b' });
    const e = eventOf(await sb.next());
    assert.equal(e.message.subject, 'for b');
    assert.equal(e.mailbox_id, b.id);
    sb.close();
  });

  test('nothing is published for a delivery whose transaction rolls back', async () => {
    const s = await sse(a);
    const raw = await buildMessage({ to: a.email, subject: 'rolled back' });
    await assert.rejects(
      app.services.ingest.deliver({
        raw,
        targets: [{ mailboxId: a.id }],
        announce: { sender: null },
        inTransaction: async () => {
          throw new Error('boom');
        },
      }),
    );
    await receive(app, a, { subject: 'after the failure' });
    assert.equal(eventOf(await s.next()).message.subject, 'after the failure');
    const rows = await app.services.store.events.forMailboxAfter(a.id, 0, null, 1000);
    assert.ok(!rows.some((r) => r.realtime?.includes('rolled back')));
    s.close();
  });

  test('bad parameters get 400; a root key 403; no key 401', async () => {
    const bad = await sse(a, '?event_types=message.delivered');
    assert.equal(bad.status, 400);
    assert.equal(bad.errorBody.error.code, 'invalid_parameter');
    const pingLow = await sse(a, '?ping=5');
    assert.equal(pingLow.status, 400);
    const root = await openSse(`${base}/api/v1/mailbox/events`, app.rootKey);
    assert.equal(root.status, 403);
    assert.equal(root.errorBody.error.code, 'insufficient_permissions');
    const anon = await openSse(`${base}/api/v1/mailbox/events`, 'smx_mbx_nope');
    assert.equal(anon.status, 401);
  });

  test('a revoked key or a suspended mailbox loses its open streams', async () => {
    const c = await createMailbox(app, 'revoked');
    const second = await app.api('POST', `/api/v1/mailboxes/${c.id}/keys`, { body: { app_name: 'second' } });
    assert.equal(second.status, 201, second.text);
    const key = second.body.data.credential as { secret: string; public_id: string };
    const byFirst = await sse(c);
    const bySecond = await openSse(`${base}/api/v1/mailbox/events`, key.secret);
    open.push(bySecond);
    assert.equal(byFirst.status, 200);
    assert.equal(bySecond.status, 200);
    assert.equal((await app.api('DELETE', `/api/v1/mailboxes/${c.id}/keys/${key.public_id}`)).status, 200);
    await app.services.realtime.recheck();
    await bySecond.ended;
    assert.equal(byFirst.frames.filter((f) => f.comment === null).length, 0);
    assert.equal((await app.api('POST', `/api/v1/mailboxes/${c.id}/suspend`)).status, 200);
    await app.services.realtime.recheck();
    await byFirst.ended;
  });

  test('the per-credential stream cap answers 429, and a closed stream frees its slot', async () => {
    const streams = [await sse(b), await sse(b), await sse(b)];
    for (const s of streams) assert.equal(s.status, 200);
    const over = await sse(b);
    assert.equal(over.status, 429);
    assert.equal(over.errorBody.error.code, 'rate_limit_exceeded');
    assert.ok(over.headers['retry-after']);
    streams[0]!.close();
    // The server notices the closed socket shortly.
    for (let i = 0; i < 100 && app.services.realtime.openStreams >= 3; i++) await new Promise((r) => setTimeout(r, 10));
    const again = await sse(b);
    assert.equal(again.status, 200);
    for (const s of [...streams, again]) s.close();
  });
});

describeEachBackend('SSE and inbound SMTP', (backend) => {
  let rig: SmtpRig;
  let base: string;
  let mb: TestMailbox;
  before(async () => {
    rig = await startSmtpRig(backend);
    await rig.app.http.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(rig.app.http.server.address() as AddressInfo).port}`;
    mb = await createMailbox(rig.app, 'smtp-stream');
  });
  after(async () => rig.close());

  test('a message accepted over SMTP reaches the stream', async () => {
    const s = await openSse(`${base}/api/v1/mailbox/events`, mb.key);
    assert.equal(s.status, 200);
    const raw = await buildMessage({ to: mb.email, subject: 'over smtp', from: 'Alice <alice@example.org>' });
    const sent = performance.now();
    const r = await transact(rig.port, 'alice@example.org', [mb.email], raw);
    assert.equal(r.data?.code, 250);
    const f = await s.next();
    const e = eventOf(f);
    assert.equal(e.message.subject, 'over smtp');
    assert.equal(e.sender, 'alice@example.org');
    assert.ok(f.at - sent < 5000);
    s.close();
  });
});

describeEachBackend('SSE close_after', (backend) => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp(backend);
    await app.http.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => app.close());

  test('the server ends the stream after close_after seconds (the minimum, 30), with pings meanwhile', { skip: backend.name !== 'sqlite' && 'timing only; the store plays no part' }, async () => {
    const mb = await createMailbox(app, 'closer');
    const base = `http://127.0.0.1:${(app.http.server.address() as AddressInfo).port}`;
    const t0 = performance.now();
    const s = await openSse(`${base}/api/v1/mailbox/events?close_after=30&ping=10`, mb.key);
    assert.equal(s.status, 200);
    await s.ended;
    const seconds = (performance.now() - t0) / 1000;
    assert.ok(seconds >= 29.5 && seconds < 40, `ended after ${seconds.toFixed(1)} s`);
    const pings = s.frames.filter((f) => f.comment === 'ping').length;
    assert.ok(pings >= 2 && pings <= 3, `${pings} pings`);
    for (let i = 0; i < 100 && app.services.realtime.openStreams > 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(app.services.realtime.openStreams, 0);
  });
});
