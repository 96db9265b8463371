// The Sending API (openapi-sending.json) under /api/v1: send, batch with partial success, direct
// and delegated attachment uploads, the published document, its 422 error rule and idempotency.
// Every response is validated against openapi-sending.json by the test client.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describeEachBackend } from '../helpers/backends.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { createMailbox, type TestMailbox } from '../helpers/mail.ts';

const EML = /^eml_[a-z0-9]{24}$/;

describeEachBackend('sending API front-end', (backend) => {
  let app: TestApp;
  let mbx: TestMailbox;
  const call = (method: string, url: string, body?: unknown, headers?: Record<string, string>) =>
    app.api(method, url, { token: mbx.key, ...(body !== undefined ? { body } : {}), ...(headers ? { headers } : {}) });
  const email = (extra: Record<string, unknown> = {}) => ({
    from: { email: mbx.email, name: 'Agent' },
    to: { email: 'customer@example.org', name: 'Customer' },
    subject: 'Welcome',
    html_body: '<p>Hello</p>',
    ...extra,
  });
  const sentCopies = async (subject: string) => (await call('GET', `/api/v1/mailbox/messages?folder_id=sent&subject=${encodeURIComponent(subject)}`)).body.data as Array<{ id: string }>;
  const rawOf = async (messageId: string): Promise<string> => {
    const row = await app.services.store.messages.get(messageId);
    return (await app.services.store.blobs.get(row!.blob_sha256))!.toString('latin1');
  };

  before(async () => {
    app = await startTestApp(backend);
    mbx = await createMailbox(app, 'sender');
  });
  after(async () => app.close());

  test('POST /emails/send queues an eml_ message stored in the mailbox\'s Sent folder', async () => {
    const r = await call('POST', '/api/v1/emails/send', email({
      subject: 'Sending API hello', text_body: 'Hello', cc: [{ email: 'cc@example.org' }], bcc: [{ email: 'secret@example.org' }],
      reply_to: { email: 'replies@example.org' }, custom_headers: { 'X-Campaign': 'c1' },
      attachments: [{ filename: 'note.txt', content: Buffer.from('a note').toString('base64') }],
    }));
    assert.equal(r.status, 200, r.text);
    assert.match(r.body.data.message_id, EML);
    assert.equal(r.body.data.status, 'queued');
    const [copy] = await sentCopies('Sending API hello');
    assert.ok(copy, 'stored in Sent');
    const raw = await rawOf(copy.id);
    assert.match(raw, /^From: Agent <sender@agents\.mailmux\.test>/m);
    assert.match(raw, /^X-Campaign: c1/m);
    assert.match(raw, /^Reply-To: replies@example\.org/m);
    assert.doesNotMatch(raw, /secret@example\.org/);
    assert.match(raw, /filename=note\.txt/);
  });

  test('return_path sets the envelope sender when it is on the mailbox\'s domain (VERP), else 403', async () => {
    const r = await call('POST', '/api/v1/emails/send', email({ subject: 'verp', return_path: 'bounces+c42@agents.mailmux.test' }));
    assert.equal(r.status, 200, r.text);
    const sub = await app.services.store.submissions.byEmailId(r.body.data.message_id);
    assert.equal(sub?.envelope_from, 'bounces+c42@agents.mailmux.test');
    assert.equal(sub?.source, 'sending_api');
    const other = await call('POST', '/api/v1/emails/send', email({ return_path: 'bounces@example.org' }));
    assert.equal(other.status, 403);
  });

  test('schema failures are 422 validation_error with errors[]; malformed JSON is 400', async () => {
    const missing = await call('POST', '/api/v1/emails/send', { from: { email: mbx.email }, to: { email: 'a@example.org' } });
    assert.equal(missing.status, 422);
    assert.equal(missing.body.error.code, 'validation_error');
    const fields = missing.body.error.errors.map((e: { field: string }) => e.field).sort();
    assert.deepEqual(fields, ['html_body', 'subject']);
    const crlf = await call('POST', '/api/v1/emails/send', email({ subject: 'a\r\nBcc: x@example.org' }));
    assert.equal(crlf.status, 422);
    const tooMany = await call('POST', '/api/v1/emails/send', email({ cc: Array.from({ length: 30 }, (_, i) => ({ email: `c${i}@example.org` })), bcc: Array.from({ length: 30 }, (_, i) => ({ email: `b${i}@example.org` })) }));
    assert.equal(tooMany.status, 422, '60 recipients is over the 50 total');
    const nonX = await call('POST', '/api/v1/emails/send', email({ custom_headers: { 'List-Unsubscribe': '<mailto:x@example.org>' } }));
    assert.equal(nonX.status, 422);
    const exe = await call('POST', '/api/v1/emails/send', email({ attachments: [{ filename: 'run.exe', content: 'TVqQ' }] }));
    assert.equal(exe.status, 422);
    const malformed = await app.api('POST', '/api/v1/emails/send', { token: mbx.key, rawBody: '{"from":', headers: { 'content-type': 'application/json' } });
    assert.equal(malformed.status, 400);
    const notMine = await call('POST', '/api/v1/emails/send', email({ from: { email: 'ceo@example.org' } }));
    assert.equal(notMine.status, 403);
    assert.equal(notMine.body.error.code, 'insufficient_permissions');
    const root = await app.api('POST', '/api/v1/emails/send', { body: email() });
    assert.equal(root.status, 403, 'a root key is not a sending credential');
    const anon = await app.api('POST', '/api/v1/emails/send', { token: null, body: email() });
    assert.equal(anon.status, 401);
    const huge = await call('POST', '/api/v1/emails/send', email({ subject: 'huge', html_body: 'x'.repeat(26_214_400) }));
    assert.equal(huge.status, 413);
  });

  test('Idempotency-Key: the replay returns the same eml_ id; a different body is 409', async () => {
    const body = email({ subject: 'idem once' });
    const a = await call('POST', '/api/v1/emails/send', body, { 'idempotency-key': 'k1' });
    const b = await call('POST', '/api/v1/emails/send', body, { 'idempotency-key': 'k1' });
    assert.equal(b.body.data.message_id, a.body.data.message_id);
    const c = await call('POST', '/api/v1/emails/send', email({ subject: 'idem other' }), { 'idempotency-key': 'k1' });
    assert.equal(c.status, 409);
    assert.equal((await sentCopies('idem once')).length, 1);
  });

  test('POST /emails/send/batch: partial success, summary, and 422 when every message is invalid', async () => {
    const r = await call('POST', '/api/v1/emails/send/batch', {
      messages: [email({ subject: 'batch one' }), email({ subject: '' }), email({ subject: 'batch three', from: { email: 'x@example.org' } }), email({ subject: 'batch four' })],
    });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.data.summary, { total: 4, queued: 2, failed: 2 });
    const [one, two, three, four] = r.body.data.results;
    assert.equal(one.status, 'queued');
    assert.match(one.message_id, EML);
    assert.equal(two.status, 'failed');
    assert.equal(two.message_id, null);
    assert.equal(two.error.code, 'validation_error');
    assert.equal(two.error.errors[0].field, 'messages.1.subject');
    assert.equal(three.error.code, 'insufficient_permissions');
    assert.equal(four.index, 3);
    assert.equal((await sentCopies('batch four')).length, 1);
    const allBad = await call('POST', '/api/v1/emails/send/batch', { messages: [email({ subject: '' }), { nope: true }] });
    assert.equal(allBad.status, 422);
    assert.equal((await call('POST', '/api/v1/emails/send/batch', { messages: [] })).status, 422);
    assert.equal((await call('POST', '/api/v1/emails/send/batch', { messages: [email()], extra: 1 })).status, 422);
  });

  test('POST /emails/attachments (direct) and GET its metadata; sent by attachment_id', async () => {
    const pdf = Buffer.from('%PDF-1.4\nsending api\n');
    const up = await app.api('POST', '/api/v1/emails/attachments?filename=report.pdf', { token: mbx.key, rawBody: pdf, headers: { 'content-type': 'application/pdf' } });
    assert.equal(up.status, 201, up.text);
    const att = up.body.data;
    assert.match(att.attachment_id, /^att_[a-z0-9]{24}$/);
    assert.equal(up.headers.location, `/api/v1/emails/attachments/${att.attachment_id}`);
    assert.equal(att.size_bytes, pdf.byteLength);
    assert.equal(att.content_type, 'application/pdf');
    const idem = { 'content-type': 'application/pdf', 'idempotency-key': 'up-1' };
    const first = await app.api('POST', '/api/v1/emails/attachments?filename=report.pdf', { token: mbx.key, rawBody: pdf, headers: idem });
    const replay = await app.api('POST', '/api/v1/emails/attachments?filename=report.pdf', { token: mbx.key, rawBody: pdf, headers: idem });
    assert.equal(replay.body.data.attachment_id, first.body.data.attachment_id);
    const otherBytes = await app.api('POST', '/api/v1/emails/attachments?filename=report.pdf', { token: mbx.key, rawBody: Buffer.from('%PDF-1.4 other'), headers: idem });
    assert.equal(otherBytes.status, 409);
    const got = await call('GET', `/api/v1/emails/attachments/${att.attachment_id}`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.body.data, att);
    assert.equal((await call('GET', '/api/v1/emails/attachments/att_aaaaaaaaaaaaaaaaaaaaaaaa')).status, 404);
    // Another mailbox's key of the same team neither sees nor sends this upload.
    const neighbour = await createMailbox(app, 'neighbour');
    assert.equal((await app.api('GET', `/api/v1/emails/attachments/${att.attachment_id}`, { token: neighbour.key })).status, 404);
    const borrowed = await app.api('POST', '/api/v1/emails/send', { token: neighbour.key, body: { ...email(), from: { email: neighbour.email }, attachments: [{ attachment_id: att.attachment_id }] } });
    assert.equal(borrowed.status, 422, borrowed.text);
    const exe = await app.api('POST', '/api/v1/emails/attachments?filename=tool.exe', { token: mbx.key, rawBody: Buffer.from('MZ'), headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(exe.status, 422);
    const fake = await app.api('POST', '/api/v1/emails/attachments?filename=fake.pdf', { token: mbx.key, rawBody: Buffer.from('MZ not a pdf'), headers: { 'content-type': 'application/pdf' } });
    assert.equal(fake.status, 422, 'binary content is sniffed against the claimed type');
    const fakeInline = await call('POST', '/api/v1/emails/send', email({ attachments: [{ filename: 'photo.png', content: Buffer.from('GIF89a').toString('base64') }] }));
    assert.equal(fakeInline.status, 422);
    const noName = await app.api('POST', '/api/v1/emails/attachments', { token: mbx.key, rawBody: pdf, headers: { 'content-type': 'application/pdf' } });
    assert.equal(noName.status, 422);
    const big = await app.api('POST', '/api/v1/emails/attachments?filename=big.pdf', { token: mbx.key, rawBody: Buffer.alloc(18_874_369), headers: { 'content-type': 'application/pdf' } });
    assert.equal(big.status, 413);
    const r = await call('POST', '/api/v1/emails/send', email({ subject: 'with upload', attachments: [{ attachment_id: att.attachment_id }] }));
    assert.equal(r.status, 200, r.text);
    const [copy] = await sentCopies('with upload');
    const m = (await call('GET', `/api/v1/mailbox/messages/${copy!.id}`)).body.data;
    assert.deepEqual(m.attachments.map((a: { filename: string }) => a.filename), ['report.pdf']);
    // Another team cannot use it.
    const bad = await call('POST', '/api/v1/emails/send', email({ attachments: [{ attachment_id: 'att_aaaaaaaaaaaaaaaaaaaaaaaa' }] }));
    assert.equal(bad.status, 422);
  });

  test('delegated upload: intent, PUT with X-Sendmux-Upload-Token and exact Content-Length', async () => {
    const bytes = Buffer.from('BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n');
    const sha = createHash('sha256').update(bytes).digest('hex');
    const i = await call('POST', '/api/v1/emails/attachment-uploads', { filename: 'invite.ics', size_bytes: bytes.byteLength, sha256: sha });
    assert.equal(i.status, 201, i.text);
    const d = i.body.data;
    assert.match(d.upload_id, /^upl_[a-z0-9]{24}$/);
    assert.equal(d.max_size_bytes, 18_874_368);
    assert.equal(d.headers['Content-Type'], 'text/calendar');
    assert.equal(d.headers['Content-Length'], String(bytes.byteLength));
    const token = d.headers['X-Sendmux-Upload-Token'];
    assert.match(token, /^smx_upload_/);
    const path = new URL(d.upload_url).pathname;
    assert.equal(path, `/api/v1/emails/attachment-uploads/${d.upload_id}`);
    const put = (t: string | null, body: Buffer) =>
      app.api('PUT', path, { token: null, rawBody: body, headers: { 'content-type': 'text/calendar', ...(t ? { 'x-sendmux-upload-token': t } : {}) } });
    assert.equal((await put(null, bytes)).status, 401);
    assert.equal((await put('smx_upload_wrong', bytes)).status, 401);
    assert.equal((await put(token, Buffer.concat([bytes, Buffer.from('x')]))).status, 413);
    const ok = await put(token, bytes);
    assert.equal(ok.status, 201, ok.text);
    assert.match(ok.body.data.attachment_id, /^att_/);
    const again = await put(token, bytes);
    assert.equal(again.body.data.attachment_id, ok.body.data.attachment_id);
    const wrongSha = await call('POST', '/api/v1/emails/attachment-uploads', { filename: 'x.pdf', size_bytes: 3, sha256: '0'.repeat(64) });
    const w = wrongSha.body.data;
    const mism = await app.api('PUT', new URL(w.upload_url).pathname, { token: null, rawBody: Buffer.from('abc'), headers: { 'content-type': 'application/pdf', 'x-sendmux-upload-token': w.headers['X-Sendmux-Upload-Token'] } });
    assert.equal(mism.status, 422);
    assert.equal((await call('POST', '/api/v1/emails/attachment-uploads', { filename: 'big.pdf', size_bytes: 18_874_369 })).status, 413);
    assert.equal((await call('POST', '/api/v1/emails/attachment-uploads', { filename: 'x.zip', size_bytes: 10 })).status, 422);
    assert.equal((await call('POST', '/api/v1/emails/attachment-uploads', { filename: 'x.pdf', size_bytes: 0 })).status, 422);
    const missing = await app.api('PUT', '/api/v1/emails/attachment-uploads/upl_aaaaaaaaaaaaaaaaaaaaaaaa', { token: null, rawBody: bytes, headers: { 'content-type': 'text/calendar', 'x-sendmux-upload-token': token } });
    assert.equal(missing.status, 404);
    const r = await call('POST', '/api/v1/emails/send', email({ subject: 'invite', attachments: [{ attachment_id: ok.body.data.attachment_id }] }));
    assert.equal(r.status, 200, r.text);
  });

  test('GET /openapi.json serves the Sending document without a key, with an ETag', async () => {
    const r = await app.api('GET', '/api/v1/openapi.json', { token: null });
    assert.equal(r.status, 200);
    assert.ok(r.body.paths['/emails/send']);
    assert.match(r.body.servers[0].url, /\/api\/v1$/);
    const etag = String(r.headers.etag);
    const again = await app.api('GET', '/api/v1/openapi.json', { token: null, headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
  });
});
