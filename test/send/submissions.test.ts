// GET /mailbox/submissions and /{id} on each backend: every filter and sort of the spec, cursors,
// ETags, the undo window (pending until send_at, then final) and the submission change feed.
// No worker runs here: the queue stays as submitted.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { describeEachBackend } from '../helpers/backends.ts';
import { MutableClock, startTestApp, type TestApp } from '../helpers/app.ts';
import { buildMessage, createMailbox, deliver, type TestMailbox } from '../helpers/mail.ts';

describeEachBackend('submissions API', (backend) => {
  let app: TestApp;
  let clock: MutableClock;
  let box: TestMailbox;
  let other: TestMailbox;
  const subs: { submissionId: string; messageId: string; threadId: string }[] = [];
  let repliedTo = '';

  before(async () => {
    clock = new MutableClock(Date.parse('2026-11-20T10:00:00Z'));
    app = await startTestApp(backend, { MAILMUX_SEND_UNDO_SECONDS: '60' }, { clock });
    box = await createMailbox(app, 'subs');
    other = await createMailbox(app, 'other');
    repliedTo = await deliver(app, box, { from: 'x@example.org', subject: 'Question' });
    for (let i = 0; i < 3; i++) {
      const raw = await buildMessage({ from: box.email, to: `r${i}@example.org`, subject: `Send ${i}`, text: 'hi', messageId: `<s${i}@agents.mailmux.test>` });
      subs.push(await app.services.outbound.submit({ mailboxId: box.id, raw, envelopeFrom: box.email, recipients: [`r${i}@example.org`, `cc${i}@example.org`], source: 'mailbox_api', ...(i === 0 ? { inReplyToMessageId: repliedTo } : {}) }));
      clock.t += 30_000;
    }
  });

  after(async () => {
    await app.close();
  });

  const list = async (qs: string) => {
    const res = await app.api('GET', `/api/v1/mailbox/submissions${qs}`, { token: box.key });
    return res;
  };

  it('lists newest first by send_at with cursors, and each submission in full', async () => {
    const page1 = await list('?limit=2');
    assert.equal(page1.status, 200, page1.text);
    assert.deepEqual(page1.body.data.map((s: { id: string }) => s.id), [subs[2]!.submissionId, subs[1]!.submissionId]);
    assert.equal(page1.body.pagination.has_more, true);
    const page2 = await list(`?limit=2&cursor=${page1.body.pagination.next_cursor}`);
    assert.deepEqual(page2.body.data.map((s: { id: string }) => s.id), [subs[0]!.submissionId]);
    const s = page2.body.data[0];
    assert.equal(s.email_id, subs[0]!.messageId);
    assert.deepEqual(s.envelope.rcpt_to.map((r: { email: string }) => r.email), ['r0@example.org', 'cc0@example.org']);
    assert.deepEqual(s.delivery_status.map((d: { delivered: string }) => d.delivered), ['queued', 'queued']);
    assert.equal((await list('?cursor=garbage')).status, 400);
  });

  it('filters by undo_status, after/before, ids and sorts every way', async () => {
    // send_at = submit time + 60 s (10:01:00, 10:01:30, 10:02:00); now is 10:01:30.
    const pending = await list('?undo_status=pending');
    assert.deepEqual(pending.body.data.map((s: { id: string; undo_status: string }) => [s.id, s.undo_status]), [[subs[2]!.submissionId, 'pending']]);
    const final = await list('?undo_status=final');
    assert.deepEqual(final.body.data.map((s: { id: string; undo_status: string }) => [s.id, s.undo_status]), [[subs[1]!.submissionId, 'final'], [subs[0]!.submissionId, 'final']]);
    assert.equal((await list('?undo_status=canceled')).body.data.length, 0);
    const window = await list(`?after=${encodeURIComponent('2026-11-20T10:01:30Z')}&before=${encodeURIComponent('2026-11-20T10:02:00Z')}`);
    assert.deepEqual(window.body.data.map((s: { id: string }) => s.id), [subs[1]!.submissionId]);
    const byEmail = await list(`?email_ids=${subs[2]!.messageId},${subs[0]!.messageId}&sort_direction=asc`);
    assert.deepEqual(byEmail.body.data.map((s: { id: string }) => s.id), [subs[0]!.submissionId, subs[2]!.submissionId]);
    const byThread = await list(`?thread_ids=${subs[1]!.threadId}`);
    assert.deepEqual(byThread.body.data.map((s: { id: string }) => s.id), [subs[1]!.submissionId]);
    const identity = byThread.body.data[0].identity_id as string;
    assert.equal((await list(`?identity_ids=${identity}`)).body.data.length, 3);
    assert.equal((await list('?identity_ids=id_nope')).body.data.length, 0);
    for (const sortBy of ['send_at', 'email_id', 'thread_id']) {
      const asc = (await list(`?sort_by=${sortBy}&sort_direction=asc&limit=1`)).body;
      const all = [asc.data[0].id];
      let cursor = asc.pagination.next_cursor;
      while (cursor) {
        const next = (await list(`?sort_by=${sortBy}&sort_direction=asc&limit=1&cursor=${cursor}`)).body;
        all.push(next.data[0].id);
        cursor = next.pagination.next_cursor;
      }
      assert.equal(new Set(all).size, 3, `${sortBy} pages cover every submission once`);
    }
    assert.equal((await list('?after=yesterday')).status, 400);
  });

  it('gets one with an ETag; another mailbox cannot see it; the change feed has it; the reply is $answered', async () => {
    const one = await app.api('GET', `/api/v1/mailbox/submissions/${subs[0]!.submissionId}`, { token: box.key });
    assert.equal(one.status, 200);
    const etag = String(one.headers.etag);
    const same = await app.api('GET', `/api/v1/mailbox/submissions/${subs[0]!.submissionId}`, { token: box.key, headers: { 'if-none-match': etag } });
    assert.equal(same.status, 304);
    const hidden = await app.api('GET', `/api/v1/mailbox/submissions/${subs[0]!.submissionId}`, { token: other.key });
    assert.equal(hidden.status, 404);
    const changes = await app.api('GET', '/api/v1/mailbox/submissions/changes?since_state=s0', { token: box.key });
    assert.equal(changes.status, 200, changes.text);
    const touched = [...changes.body.data.created, ...changes.body.data.updated];
    assert.ok(touched.includes(subs[0]!.submissionId), changes.text);
    const msg = await app.api('GET', `/api/v1/mailbox/messages/${repliedTo}`, { token: box.key });
    assert.equal(msg.body.data.flags.answered, true, msg.text);
    // The Sent copy is in Sent, seen.
    const sent = await app.api('GET', `/api/v1/mailbox/messages/${subs[0]!.messageId}`, { token: box.key });
    assert.equal(sent.status, 200);
    assert.equal(sent.body.data.flags.seen, true);
  });

  it('cancels inside the undo window (PATCH undo_status canceled); after send_at it is 409', async () => {
    const raw = await buildMessage({ from: box.email, to: 'late@example.org', subject: 'Oops', text: 'wrong draft', messageId: '<oops@agents.mailmux.test>' });
    const sub = await app.services.outbound.submit({ mailboxId: box.id, raw, envelopeFrom: box.email, recipients: ['late@example.org'], source: 'mailbox_api' });
    const path = `/api/v1/mailbox/submissions/${sub.submissionId}`;
    const before = await app.api('GET', path, { token: box.key });
    assert.equal(before.body.data.undo_status, 'pending');
    const sinceState = (await app.api('GET', '/api/v1/mailbox/submissions/changes', { token: box.key })).body.data.new_state;

    assert.equal((await app.api('PATCH', path, { token: box.key, body: { undo_status: 'final' } })).status, 400);
    assert.equal((await app.api('PATCH', path, { token: box.key, body: { undo_status: 'canceled' }, headers: { 'if-match': 'W/"stale"' } })).status, 409);
    assert.equal((await app.api('PATCH', path, { token: other.key, body: { undo_status: 'canceled' } })).status, 404);
    const canceled = await app.api('PATCH', path, { token: box.key, body: { undo_status: 'canceled' } });
    assert.equal(canceled.status, 200, canceled.text);
    assert.equal(canceled.body.data.undo_status, 'canceled');
    // Nothing is left for a worker: every queue row is final, and the feed reports the update.
    const rows = await app.services.store.outbound.forSubmission(sub.submissionId);
    assert.deepEqual(rows.map((r) => [r.status, r.smtp_reply]), [['failed', 'canceled']]);
    clock.t += 3600_000;
    assert.equal((await app.api('GET', path, { token: box.key })).body.data.undo_status, 'canceled');
    const changes = await app.api('GET', `/api/v1/mailbox/submissions/changes?since_state=${sinceState}`, { token: box.key });
    assert.deepEqual(changes.body.data.updated, [sub.submissionId]);
    assert.equal((await list('?undo_status=canceled')).body.data.length, 1);

    // A submission whose window has passed cannot be canceled.
    const raw2 = await buildMessage({ from: box.email, to: 'gone@example.org', subject: 'Sent', text: 'x', messageId: '<gone@agents.mailmux.test>' });
    const sub2 = await app.services.outbound.submit({ mailboxId: box.id, raw: raw2, envelopeFrom: box.email, recipients: ['gone@example.org'], source: 'mailbox_api' });
    clock.t += 61_000;
    const late = await app.api('PATCH', `/api/v1/mailbox/submissions/${sub2.submissionId}`, { token: box.key, body: { undo_status: 'canceled' } });
    assert.equal(late.status, 409);
    assert.equal(late.body.error.code, 'conflict');
  });
});
