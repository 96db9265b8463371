// Mailbox API folders (role folders, custom create/rename/nest/delete rules) and threads
// (References/In-Reply-To, subject fallback, list/get/messages/content).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { describeEachBackend } from '../helpers/backends.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { createMailbox, deliver, type TestMailbox } from '../helpers/mail.ts';

const T0 = Date.parse('2026-11-02T09:00:00Z');

describeEachBackend('mailbox API folders and threads', (backend) => {
  let app: TestApp;
  let mbx: TestMailbox;
  const call = (method: string, url: string, body?: unknown, headers?: Record<string, string>) =>
    app.api(method, url, { token: mbx.key, ...(body !== undefined ? { body } : {}), ...(headers ? { headers } : {}) });

  before(async () => {
    app = await startTestApp(backend);
    mbx = await createMailbox(app);
  });
  after(async () => app.close());

  test('every mailbox starts with the six role folders', async () => {
    const r = await call('GET', '/api/v1/mailbox/folders');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.data.map((f: { role: string }) => f.role), ['inbox', 'drafts', 'sent', 'archive', 'spam', 'trash']);
    const p = await call('GET', '/api/v1/mailbox/folders?limit=4');
    assert.equal(p.body.data.length, 4);
    const p2 = await call('GET', `/api/v1/mailbox/folders?limit=4&cursor=${p.body.pagination.next_cursor}`);
    assert.deepEqual(p2.body.data.map((f: { role: string }) => f.role), ['spam', 'trash']);
  });

  test('custom folders: create, nest, rename, conditional writes, delete only when empty', async () => {
    const c = await call('POST', '/api/v1/mailbox/folders', { name: 'Clients' });
    assert.equal(c.status, 201);
    const dup = await call('POST', '/api/v1/mailbox/folders', { name: 'Clients' });
    assert.equal(dup.status, 422);
    const child = await call('POST', '/api/v1/mailbox/folders', { name: 'Acme', parent_id: c.body.data.id, sort_order: 5 });
    assert.equal(child.body.data.parent_id, c.body.data.id);
    const loop = await call('PATCH', `/api/v1/mailbox/folders/${c.body.data.id}`, { parent_id: child.body.data.id });
    assert.equal(loop.status, 409);
    const g = await call('GET', `/api/v1/mailbox/folders/${c.body.data.id}`);
    assert.equal((await call('GET', `/api/v1/mailbox/folders/${c.body.data.id}`, undefined, { 'if-none-match': String(g.headers.etag) })).status, 304);
    const stale = await call('PATCH', `/api/v1/mailbox/folders/${c.body.data.id}`, { name: 'Customers' }, { 'if-match': 'W/"0000000000000000"' });
    assert.equal(stale.status, 409);
    const renamed = await call('PATCH', `/api/v1/mailbox/folders/${c.body.data.id}`, { name: 'Customers' }, { 'if-match': String(g.headers.etag) });
    assert.equal(renamed.body.data.name, 'Customers');
    assert.equal((await call('DELETE', `/api/v1/mailbox/folders/${c.body.data.id}`)).status, 409, 'has a subfolder');
    assert.equal((await call('DELETE', `/api/v1/mailbox/folders/${child.body.data.id}`)).status, 200);
    assert.equal((await call('DELETE', `/api/v1/mailbox/folders/${c.body.data.id}`)).status, 200);
    assert.equal((await call('GET', `/api/v1/mailbox/folders/${c.body.data.id}`)).status, 404);
    const bad = await call('POST', '/api/v1/mailbox/folders', { name: 'a/b' });
    assert.equal(bad.status, 422);
    const missing = await call('POST', '/api/v1/mailbox/folders', {});
    assert.equal(missing.status, 400);
  });

  test('role folders cannot be deleted or renamed; non-empty custom folders cannot be deleted', async () => {
    const inbox = (await call('GET', '/api/v1/mailbox/folders/inbox')).body.data;
    assert.equal((await call('DELETE', `/api/v1/mailbox/folders/${inbox.id}`)).status, 409);
    assert.equal((await call('PATCH', `/api/v1/mailbox/folders/${inbox.id}`, { name: 'Posteingang' })).status, 409);
    await deliver(app, mbx, { subject: 'count me', text: 'x' });
    const after1 = (await call('GET', '/api/v1/mailbox/folders/inbox')).body.data;
    assert.equal(after1.total_messages, inbox.total_messages + 1);
    assert.equal(after1.unread_messages, inbox.unread_messages + 1);
  });

  test('threads join by In-Reply-To / References and by subject for replies', async () => {
    const root = await deliver(app, mbx, { subject: 'Budget 2027', text: 'Draft budget attached', messageId: '<budget-1@example.org>' }, { receivedAt: T0 });
    const reply = await deliver(app, mbx, { subject: 'Re: Budget 2027', text: 'Looks good', messageId: '<budget-2@example.org>', inReplyTo: '<budget-1@example.org>', references: ['<budget-1@example.org>'] }, { receivedAt: T0 + 60_000 });
    const bySubject = await deliver(app, mbx, { subject: 'RE: AW: Budget 2027', text: 'One more thing' }, { receivedAt: T0 + 120_000 });
    const unrelated = await deliver(app, mbx, { subject: 'Budget 2027', text: 'A different budget' }, { receivedAt: T0 + 180_000 });
    const m = async (id: string) => (await call('GET', `/api/v1/mailbox/messages/${id}`)).body.data;
    const t = (await m(root)).thread_id;
    assert.equal((await m(reply)).thread_id, t);
    assert.equal((await m(bySubject)).thread_id, t);
    assert.notEqual((await m(unrelated)).thread_id, t);

    const th = await call('GET', `/api/v1/mailbox/threads/${t}`);
    assert.equal(th.status, 200);
    assert.deepEqual(th.body.data.message_ids, [root, reply, bySubject]);
    assert.equal(th.body.data.message_count, 3);
    assert.equal(th.body.data.unread_count, 3);
    assert.equal((await call('GET', `/api/v1/mailbox/threads/${t}`, undefined, { 'if-none-match': String(th.headers.etag) })).status, 304);

    const msgs = await call('GET', `/api/v1/mailbox/threads/${t}/messages?limit=2`);
    assert.deepEqual(msgs.body.data.map((x: { id: string }) => x.id), [root, reply]);
    const msgs2 = await call('GET', `/api/v1/mailbox/threads/${t}/messages?limit=2&cursor=${msgs.body.pagination.next_cursor}`);
    assert.deepEqual(msgs2.body.data.map((x: { id: string }) => x.id), [bySubject]);
    assert.deepEqual((await call('GET', `/api/v1/mailbox/threads/${t}/messages?sort=desc`)).body.data.map((x: { id: string }) => x.id), [bySubject, reply, root]);

    const list = await call('GET', '/api/v1/mailbox/threads?q=budget');
    assert.equal(list.status, 200);
    assert.equal(typeof list.body.meta.query_state, 'string');
    assert.deepEqual(list.body.data.map((x: { id: string }) => x.id).sort(), [t, (await m(unrelated)).thread_id].sort());
    const byParticipant = await call('GET', '/api/v1/mailbox/threads?participant=alice%40example.org&limit=100');
    assert.ok(byParticipant.body.data.some((x: { id: string }) => x.id === t));
    const content = await call('GET', `/api/v1/mailbox/threads/${t}/content`);
    assert.equal(content.status, 200);
    assert.equal(content.body.data.length, 3);
    assert.equal(content.body.meta.thread_id, t);
    assert.equal(typeof content.body.meta.states.option_hash, 'string');
    const inThread = await call('GET', `/api/v1/mailbox/messages?thread_id=${t}`);
    assert.equal(inThread.body.data.length, 3);
    assert.equal((await call('GET', '/api/v1/mailbox/threads/thr_nope')).status, 404);
  });

  test('content is deterministic and honours options', async () => {
    const id = await deliver(app, mbx, { subject: 'Question', text: 'Can you send the file?\n\nOn Mon, Nov 2, 2026 at 9:00 AM Bob <bob@x.example> wrote:\n> earlier text\n\n-- \nAlice\nCEO, Example', html: undefined });
    const a = await call('GET', `/api/v1/mailbox/messages/${id}/content`);
    assert.equal(a.status, 200);
    assert.equal(a.body.data.body.text, 'Can you send the file?');
    assert.equal(a.body.data.body.quotes_stripped, true);
    const b = await call('GET', `/api/v1/mailbox/messages/${id}/content`);
    assert.deepEqual(b.body.data.body, a.body.data.body);
    assert.equal(b.body.data.states.option_hash, a.body.data.states.option_hash);
    const raw = await call('GET', `/api/v1/mailbox/messages/${id}/content?strip_quotes=false&strip_signature=false&include_headers=full`);
    assert.match(raw.body.data.body.text, /earlier text/);
    assert.notEqual(raw.body.data.states.option_hash, a.body.data.states.option_hash);
    assert.equal(raw.body.data.headers.mode, 'full');
    assert.ok(raw.body.data.headers.full.some((h: { name: string }) => h.name.toLowerCase() === 'subject'));
    const cut = await call('GET', `/api/v1/mailbox/messages/${id}/content?max_body_chars=3`);
    assert.equal(cut.body.data.body.is_truncated, true);
    assert.equal(cut.body.data.body.truncated_at_chars, 3);
    assert.equal((await call('GET', `/api/v1/mailbox/messages/${id}/content`, undefined, { 'if-none-match': String(a.headers.etag) })).status, 304);
  });

  test('spam deliveries land in the spam folder', async () => {
    const id = await deliver(app, mbx, { subject: 'WIN NOW', text: 'cheap' }, { spam: true });
    const spam = (await call('GET', '/api/v1/mailbox/folders/spam')).body.data;
    assert.deepEqual((await call('GET', `/api/v1/mailbox/messages/${id}`)).body.data.folder_ids, [spam.id]);
    assert.equal((await call('GET', '/api/v1/mailbox/messages?folder_id=spam')).body.data.length, 1);
  });
});
