// Mailbox API messages: list (filters, sorts, cursors), count, snippets, get, PATCH, DELETE,
// batch get/update/delete with if_in_state, raw body, and attachment download with Range.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { describeEachBackend } from '../helpers/backends.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { createMailbox, deliver, type TestMailbox } from '../helpers/mail.ts';

const T0 = Date.parse('2026-11-01T08:00:00Z');
const hour = 3600_000;

describeEachBackend('mailbox API messages', (backend) => {
  let app: TestApp;
  let mbx: TestMailbox;
  const ids: Record<string, string> = {};
  const get = (url: string) => app.api('GET', url, { token: mbx.key });

  before(async () => {
    app = await startTestApp(backend);
    mbx = await createMailbox(app);
    ids.invoice = await deliver(app, mbx, { from: 'Billing <billing@vendor.example>', subject: 'Invoice 2026-11', text: 'Your invoice total is 420 EUR.', attachments: [{ filename: 'invoice.pdf', content: Buffer.from('%PDF-1.4 fake pdf bytes '.repeat(40)), contentType: 'application/pdf' }] }, { receivedAt: T0 });
    ids.meeting = await deliver(app, mbx, { from: 'Bob <bob@partner.example>', cc: 'carol@partner.example', subject: 'Meeting tomorrow', text: 'Can we meet at ten? Bring the roadmap.', headers: { 'X-Ticket': 'T-77' } }, { receivedAt: T0 + hour });
    ids.news = await deliver(app, mbx, { from: 'News <news@list.example>', subject: 'Weekly digest', html: '<p>Top <b>stories</b> of the week</p>' }, { receivedAt: T0 + 2 * hour });
    ids.zurich = await deliver(app, mbx, { from: 'Zoe <zoe@zurich.example>', subject: 'Zürich offsite', text: 'Grüße aus Zürich' }, { receivedAt: T0 + 3 * hour });
  });
  after(async () => app.close());

  test('list returns summaries newest first with folder, flags and attachments', async () => {
    const r = await get('/api/v1/mailbox/messages');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.data.map((m: { id: string }) => m.id), [ids.zurich, ids.news, ids.meeting, ids.invoice]);
    const inv = r.body.data[3];
    assert.equal(inv.subject, 'Invoice 2026-11');
    assert.deepEqual(inv.from, { email: 'billing@vendor.example', name: 'Billing' });
    assert.equal(inv.has_attachments, true);
    assert.equal(inv.attachments[0].filename, 'invoice.pdf');
    assert.deepEqual(inv.flags, { seen: false, flagged: false, draft: false, answered: false });
    const inbox = (await get('/api/v1/mailbox/folders')).body.data.find((f: { role: string }) => f.role === 'inbox');
    assert.deepEqual(inv.folder_ids, [inbox.id]);
    assert.equal(r.body.pagination.has_more, false);
  });

  test('cursor pages are stable when newer mail arrives between pages', async () => {
    const p1 = await get('/api/v1/mailbox/messages?limit=2');
    assert.equal(p1.body.pagination.has_more, true);
    const extra = await deliver(app, mbx, { subject: 'late arrival', text: 'x' }, { receivedAt: T0 + 10 * hour });
    const p2 = await get(`/api/v1/mailbox/messages?limit=2&cursor=${p1.body.pagination.next_cursor}`);
    assert.deepEqual(p2.body.data.map((m: { id: string }) => m.id), [ids.meeting, ids.invoice]);
    assert.equal(p2.body.pagination.has_more, false);
    await app.api('DELETE', `/api/v1/mailbox/messages/${extra}?permanent=true`, { token: mbx.key });
    const bad = await get('/api/v1/mailbox/messages?cursor=garbage!');
    assert.equal(bad.status, 400);
  });

  test('every filter of the spec narrows the list', async () => {
    const cases: [string, string[]][] = [
      ['folder_id=inbox', [ids.zurich!, ids.news!, ids.meeting!, ids.invoice!]],
      ['q=roadmap', [ids.meeting!]],
      ['q=invoice', [ids.invoice!]],
      ['q=zurich', [ids.zurich!]],
      // Addresses, host names and dotted or hyphenated numbers are found whole or by their parts.
      ['q=bob@partner.example', [ids.meeting!]],
      ['q=carol', [ids.meeting!]],
      ['q=vendor.example', [ids.invoice!]],
      ['q=2026-11', [ids.invoice!]],
      ['from=bob%40partner', [ids.meeting!]],
      ['from=billing', [ids.invoice!]],
      ['to=agent', [ids.zurich!, ids.news!, ids.meeting!, ids.invoice!]],
      ['cc=carol', [ids.meeting!]],
      ['subject=digest', [ids.news!]],
      ['body=bring%20the', [ids.meeting!]],
      ['header_name=X-Ticket', [ids.meeting!]],
      ['header_name=X-Ticket&header_value=T-77', [ids.meeting!]],
      ['header_name=X-Ticket&header_value=T-78', []],
      ['has_attachment=true', [ids.invoice!]],
      ['has_attachment=false', [ids.zurich!, ids.news!, ids.meeting!]],
      [`after=${new Date(T0 + hour).toISOString()}`, [ids.zurich!, ids.news!, ids.meeting!]],
      [`before=${new Date(T0 + hour).toISOString()}`, [ids.invoice!]],
      ['is_unread=true', [ids.zurich!, ids.news!, ids.meeting!, ids.invoice!]],
    ];
    for (const [query, expected] of cases) {
      const r = await get(`/api/v1/mailbox/messages?${query}`);
      assert.equal(r.status, 200, `${query}: ${r.text}`);
      assert.deepEqual(r.body.data.map((m: { id: string }) => m.id), expected, query);
    }
    const sizes = (await get('/api/v1/mailbox/messages')).body.data.map((m: { size_bytes: number }) => m.size_bytes).sort((a: number, b: number) => a - b);
    const min = await get(`/api/v1/mailbox/messages?min_size_bytes=${sizes[3]}`);
    assert.equal(min.body.data.length, 1);
    const max = await get(`/api/v1/mailbox/messages?max_size_bytes=${sizes[3]}`);
    assert.equal(max.body.data.length, 3);
    const combo = await get(`/api/v1/mailbox/messages?thread_id=thr_x&q=x`);
    assert.equal(combo.status, 400);
    assert.equal(combo.body.error.param, 'thread_id');
    const badFolder = await get('/api/v1/mailbox/messages?folder_id=fld_nope');
    assert.equal(badFolder.status, 400);
    const badDate = await get('/api/v1/mailbox/messages?after=yesterday');
    assert.equal(badDate.status, 400);
  });

  test('sorts by every column in both directions, with keyset cursors', async () => {
    const subjects = async (q: string) => (await get(`/api/v1/mailbox/messages?${q}`)).body.data.map((m: { subject: string }) => m.subject);
    assert.deepEqual(await subjects('sort_by=subject&sort_direction=asc'), ['Invoice 2026-11', 'Meeting tomorrow', 'Weekly digest', 'Zürich offsite']);
    assert.deepEqual(await subjects('sort_by=from&sort_direction=asc'), ['Invoice 2026-11', 'Meeting tomorrow', 'Weekly digest', 'Zürich offsite']);
    const bySize = (await get('/api/v1/mailbox/messages?sort_by=size_bytes&sort_direction=desc')).body.data;
    assert.equal(bySize[0].id, ids.invoice);
    const p1 = await get('/api/v1/mailbox/messages?sort_by=subject&sort_direction=asc&limit=3');
    const p2 = await get(`/api/v1/mailbox/messages?sort_by=subject&sort_direction=asc&limit=3&cursor=${p1.body.pagination.next_cursor}`);
    assert.deepEqual(p2.body.data.map((m: { subject: string }) => m.subject), ['Zürich offsite']);
    for (const by of ['received_at', 'sent_at', 'to']) assert.equal((await get(`/api/v1/mailbox/messages?sort_by=${by}`)).status, 200);
  });

  test('count and search snippets', async () => {
    const c = await get('/api/v1/mailbox/messages/count?has_attachment=false');
    assert.equal(c.body.data.total, 3);
    assert.equal(typeof c.body.data.sync_state, 'string');
    const s = await get('/api/v1/mailbox/messages/search-snippets?q=meeting');
    assert.equal(s.status, 200);
    assert.equal(s.body.data.snippets.length, 1);
    assert.equal(s.body.data.snippets[0].subject, '<mark>Meeting</mark> tomorrow');
    const missing = await get('/api/v1/mailbox/messages/search-snippets');
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error.code, 'missing_parameter');
    const scoped = await get(`/api/v1/mailbox/messages/search-snippets?q=meeting&message_ids=${ids.invoice},msg_unknown`);
    assert.deepEqual(scoped.body.data.snippets, []);
    assert.deepEqual(scoped.body.data.not_found, ['msg_unknown']);
  });

  test('get returns bodies; body endpoint truncates without splitting', async () => {
    const m = await get(`/api/v1/mailbox/messages/${ids.meeting}`);
    assert.equal(m.status, 200);
    assert.match(m.body.data.text_body, /Bring the roadmap/);
    const etag = String(m.headers.etag);
    assert.equal((await app.api('GET', `/api/v1/mailbox/messages/${ids.meeting}`, { token: mbx.key, headers: { 'if-none-match': etag } })).status, 304);
    // A message with attachments always answers 200 so its download URLs are fresh.
    const inv = await get(`/api/v1/mailbox/messages/${ids.invoice}`);
    assert.equal((await app.api('GET', `/api/v1/mailbox/messages/${ids.invoice}`, { token: mbx.key, headers: { 'if-none-match': String(inv.headers.etag) } })).status, 200);
    const body = await get(`/api/v1/mailbox/messages/${ids.news}/body?part=html`);
    assert.equal(body.body.data.body.text, null);
    assert.match(body.body.data.body.html, /<b>stories<\/b>/);
    const cut = await get(`/api/v1/mailbox/messages/${ids.meeting}/body?part=text&max_body_chars=5`);
    assert.equal(cut.body.data.body.text, 'Can w');
    assert.equal(cut.body.data.body.is_truncated, true);
    assert.equal(cut.body.data.body.truncated_at_chars, 5);
    assert.equal((await get('/api/v1/mailbox/messages/msg_nope')).status, 404);
    assert.equal((await get(`/api/v1/mailbox/messages/${ids.meeting}/body?max_body_chars=0`)).status, 400);
  });

  test('PATCH sets seen, flagged and keywords; lifecycle keywords are read-only; If-Match guards', async () => {
    const url = `/api/v1/mailbox/messages/${ids.meeting}`;
    const r = await app.api('PATCH', url, { token: mbx.key, body: { seen: true, flagged: true, keywords: { Agent_Triaged: true } } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.data.keywords, ['$flagged', '$seen', 'agent_triaged']);
    assert.equal(r.body.data.flags.seen, true);
    assert.deepEqual((await get('/api/v1/mailbox/messages?keyword=agent_triaged')).body.data.map((m: { id: string }) => m.id), [ids.meeting]);
    assert.equal((await get('/api/v1/mailbox/messages?not_keyword=$seen')).body.data.length, 3);
    assert.equal((await get('/api/v1/mailbox/messages?is_unread=false')).body.data.length, 1);
    const draft = await app.api('PATCH', url, { token: mbx.key, body: { keywords: { $draft: true } } });
    assert.equal(draft.status, 400);
    const stale = await app.api('PATCH', url, { token: mbx.key, body: { seen: false }, headers: { 'if-match': 'W/"0000000000000000"' } });
    assert.equal(stale.status, 409);
    assert.equal(stale.headers.etag, r.headers.etag);
    const ok = await app.api('PATCH', url, { token: mbx.key, body: { keywords: { agent_triaged: false } }, headers: { 'if-match': String(r.headers.etag) } });
    assert.equal(ok.status, 200);
    const unknownField = await app.api('PATCH', url, { token: mbx.key, body: { answered: true } });
    assert.equal(unknownField.status, 400);
    const tooMany = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, true]));
    assert.equal((await app.api('PATCH', url, { token: mbx.key, body: { keywords: tooMany } })).status, 400);
  });

  test('batch get in every body mode, with not_found', async () => {
    const none = await app.api('POST', '/api/v1/mailbox/messages:batch-get', { token: mbx.key, body: { ids: [ids.meeting, 'msg_missing'] } });
    assert.equal(none.status, 200);
    assert.equal(none.body.data.messages[0].raw_body, null);
    assert.deepEqual(none.body.data.not_found, ['msg_missing']);
    const raw = await app.api('POST', '/api/v1/mailbox/messages:batch-get', { token: mbx.key, body: { ids: [ids.meeting], body_mode: 'raw', part: 'text' } });
    assert.match(raw.body.data.messages[0].raw_body.body.text, /roadmap/);
    const clean = await app.api('POST', '/api/v1/mailbox/messages:batch-get', { token: mbx.key, body: { ids: [ids.meeting], body_mode: 'clean_json' } });
    assert.match(clean.body.data.messages[0].content.body.text, /roadmap/);
    const tooMany = await app.api('POST', '/api/v1/mailbox/messages:batch-get', { token: mbx.key, body: { ids: Array.from({ length: 101 }, (_, i) => `msg_${i}`) } });
    assert.equal(tooMany.status, 400);
  });

  test('batch update honours if_in_state and reports states', async () => {
    const state = (await get('/api/v1/mailbox/messages/count')).body.data.sync_state;
    const stale = await app.api('POST', '/api/v1/mailbox/messages:batch-update', { token: mbx.key, body: { ids: [ids.news], seen: true, if_in_state: 's0' } });
    assert.equal(stale.status, 409);
    const r = await app.api('POST', '/api/v1/mailbox/messages:batch-update', { token: mbx.key, body: { ids: [ids.news, ids.zurich, 'msg_gone'], seen: true, if_in_state: state } });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.data.updated, [ids.news, ids.zurich]);
    assert.deepEqual(r.body.data.not_found, ['msg_gone']);
    assert.equal(r.body.data.states.old_state, state);
    assert.notEqual(r.body.data.states.new_state, state);
    const inbox = (await get('/api/v1/mailbox/folders/inbox')).body.data;
    assert.equal(inbox.unread_messages, 1);
  });

  test('delete moves to Trash, then destroys; quota follows; batch delete', async () => {
    const before1 = (await get('/api/v1/mailbox/me')).body.data.quota_used_bytes;
    const d = await app.api('DELETE', `/api/v1/mailbox/messages/${ids.news}`, { token: mbx.key });
    assert.equal(d.status, 200);
    assert.deepEqual(d.body.data, { deleted: true, id: ids.news });
    const trash = (await get('/api/v1/mailbox/folders/trash')).body.data;
    assert.deepEqual((await get(`/api/v1/mailbox/messages/${ids.news}`)).body.data.folder_ids, [trash.id]);
    assert.equal((await get('/api/v1/mailbox/me')).body.data.quota_used_bytes, before1);
    const size = (await get(`/api/v1/mailbox/messages/${ids.news}`)).body.data.size_bytes;
    await app.api('DELETE', `/api/v1/mailbox/messages/${ids.news}`, { token: mbx.key });
    assert.equal((await get(`/api/v1/mailbox/messages/${ids.news}`)).status, 404);
    assert.equal((await get('/api/v1/mailbox/me')).body.data.quota_used_bytes, before1 - size);
    const extra = await deliver(app, mbx, { subject: 'to purge', text: 'bye' });
    const state = (await get('/api/v1/mailbox/messages/count')).body.data.sync_state;
    const b = await app.api('POST', '/api/v1/mailbox/messages:batch-delete', { token: mbx.key, body: { ids: [extra, 'msg_nope'], permanent: true, if_in_state: state } });
    assert.equal(b.status, 200);
    assert.deepEqual(b.body.data.deleted, [extra]);
    assert.deepEqual(b.body.data.not_found, ['msg_nope']);
    assert.equal((await app.api('POST', '/api/v1/mailbox/messages:batch-delete', { token: mbx.key, body: { ids: [ids.zurich], if_in_state: state } })).status, 409);
  });

  test('attachments download whole, by Range, and by download_url without a key', async () => {
    const m = (await get(`/api/v1/mailbox/messages/${ids.invoice}`)).body.data;
    const att = m.attachments[0];
    const url = `/api/v1/mailbox/messages/${ids.invoice}/attachments/${att.id}`;
    const whole = await app.http.inject({ method: 'GET', url, headers: { authorization: `Bearer ${mbx.key}` } });
    assert.equal(whole.statusCode, 200);
    assert.equal(whole.headers['content-type'], 'application/pdf');
    assert.equal(whole.rawPayload.toString(), '%PDF-1.4 fake pdf bytes '.repeat(40));
    assert.equal(att.size_bytes, whole.rawPayload.length);
    const part = await app.http.inject({ method: 'GET', url, headers: { authorization: `Bearer ${mbx.key}`, range: 'bytes=0-7' } });
    assert.equal(part.statusCode, 206);
    assert.equal(part.rawPayload.toString(), '%PDF-1.4');
    assert.equal(part.headers['content-range'], `bytes 0-7/${whole.rawPayload.length}`);
    const tail = await app.http.inject({ method: 'GET', url, headers: { authorization: `Bearer ${mbx.key}`, range: 'bytes=-6' } });
    assert.equal(tail.rawPayload.toString(), 'bytes ');
    const bad = await app.api('GET', url, { token: mbx.key, headers: { range: 'lines=1-2' } });
    assert.equal(bad.status, 400);
    const beyond = await app.api('GET', url, { token: mbx.key, headers: { range: 'bytes=999999-' } });
    assert.equal(beyond.status, 416);
    const pathAndQuery = String(att.download_url).replace(/^https?:\/\/[^/]+/, '');
    const viaToken = await app.http.inject({ method: 'GET', url: pathAndQuery });
    assert.equal(viaToken.statusCode, 200);
    assert.equal(viaToken.rawPayload.length, whole.rawPayload.length);
    const forged = await app.api('GET', pathAndQuery.replace(/download_token=[^&]+/, 'download_token=zz.aaaa'), { token: null });
    assert.equal(forged.status, 401);
    assert.equal((await app.api('GET', `/api/v1/mailbox/messages/${ids.invoice}/attachments/att_9`, { token: mbx.key })).status, 404);
  });
});

test('snippet highlighting folds case and accents like the search', async () => {
  const { highlight } = await import('../../src/services/mail/messages.ts');
  assert.equal(highlight('Zürich <offsite>', ['zurich']), '<mark>Zürich</mark> &lt;offsite&gt;');
  assert.equal(highlight('Meeting and meetings', ['meeting']), '<mark>Meeting</mark> and <mark>meeting</mark>s');
  assert.equal(highlight(null, ['x']), null);
});
