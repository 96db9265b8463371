// Mailbox API sending: POST /mailbox/messages/send (identity, signatures, Bcc, threading, attachments,
// Idempotency-Key, every limit), the direct upload and the presigned upload flow. Every response is
// validated against openapi-app.json by the test client; the Sent copy is read back through the API.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { describeEachBackend } from '../helpers/backends.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { createMailbox, deliver, type TestMailbox } from '../helpers/mail.ts';

describeEachBackend('mailbox send front-end', (backend) => {
  let app: TestApp;
  let mbx: TestMailbox;
  const call = (method: string, url: string, body?: unknown, headers?: Record<string, string>) =>
    app.api(method, url, { token: mbx.key, ...(body !== undefined ? { body } : {}), ...(headers ? { headers } : {}) });
  const rawOf = async (messageId: string): Promise<string> => {
    const row = await app.services.store.messages.get(messageId);
    assert.ok(row, 'the Sent copy exists');
    return (await app.services.store.blobs.get(row.blob_sha256))!.toString('latin1');
  };
  const upload = (bytes: Buffer, filename: string, type = 'application/pdf') =>
    app.api('POST', `/api/v1/mailbox/attachments:upload?filename=${encodeURIComponent(filename)}`, { token: mbx.key, rawBody: bytes, headers: { 'content-type': type } });

  before(async () => {
    app = await startTestApp(backend);
    mbx = await createMailbox(app);
  });
  after(async () => app.close());

  test('a send is queued, stored in Sent with the identity name and signatures, Bcc absent from the headers', async () => {
    const id = await call('PATCH', '/api/v1/mailbox/identity', { name: 'Support Agent', text_signature: 'Regards, Support', html_signature: '<p>Regards, <b>Support</b></p>' });
    assert.equal(id.status, 200);
    const r = await call('POST', '/api/v1/mailbox/messages/send', {
      to: [{ email: 'customer@example.org', name: 'Customer' }],
      cc: [{ email: 'boss@example.org' }],
      bcc: [{ email: 'hidden@example.org' }],
      reply_to: [{ email: 'help@example.org' }],
      subject: 'Your order',
      text_body: 'It shipped.',
      html_body: '<html><body><p>It shipped.</p></body></html>',
      custom_headers: { 'X-Order': '42' },
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.data.status, 'queued');
    assert.match(r.body.data.message_id, /^msg_[a-z0-9]{24}$/);
    const sent = await call('GET', '/api/v1/mailbox/messages?folder_id=sent');
    assert.equal(sent.status, 200);
    assert.ok(sent.body.data.some((m: { id: string }) => m.id === r.body.data.message_id), 'listed in Sent');
    const raw = await rawOf(r.body.data.message_id);
    assert.match(raw, /^From: Support Agent <agent@agents\.mailmux\.test>/m);
    assert.match(raw, /^To: Customer <customer@example\.org>/m);
    assert.match(raw, /^Cc: boss@example\.org/m);
    assert.match(raw, /^Reply-To: help@example\.org/m);
    assert.match(raw, /^X-Order: 42/m);
    assert.match(raw, /^Message-ID: <[a-z0-9]{24}@agents\.mailmux\.test>/m);
    assert.match(raw, /^Date: /m);
    assert.doesNotMatch(raw, /^Bcc:/im);
    assert.doesNotMatch(raw, /hidden@example\.org/);
    assert.match(raw, /-- \r?\nRegards, Support/);
    assert.match(raw, /<b>Support<\/b>/);
    // The envelope still carries the Bcc recipient.
    const sub = await app.services.store.messages.get(r.body.data.message_id);
    assert.ok(sub);
    const detail = await call('GET', `/api/v1/mailbox/messages/${r.body.data.message_id}`);
    assert.equal(detail.status, 200);
    assert.equal(detail.body.data.subject, 'Your order');
  });

  test('a reply is threaded with the message replied to (by msg_ id or Message-ID)', async () => {
    const parentId = await deliver(app, mbx, { from: 'Bob <bob@example.org>', subject: 'Question', text: 'Hi?', messageId: '<q1@example.org>', references: ['<root@example.org>'] });
    const parent = (await call('GET', `/api/v1/mailbox/messages/${parentId}`)).body.data;
    const r = await call('POST', '/api/v1/mailbox/messages/send', {
      to: [{ email: 'bob@example.org' }], subject: 'Re: Question', text_body: 'Answer.', custom_headers: { 'In-Reply-To': parentId },
    });
    assert.equal(r.status, 200, r.text);
    const raw = await rawOf(r.body.data.message_id);
    assert.match(raw, /^In-Reply-To: <q1@example\.org>/m);
    assert.match(raw, /^References: <root@example\.org> <q1@example\.org>/m);
    const reply = (await call('GET', `/api/v1/mailbox/messages/${r.body.data.message_id}`)).body.data;
    assert.equal(reply.thread_id, parent.thread_id);
    const thread = await call('GET', `/api/v1/mailbox/messages?thread_id=${parent.thread_id}`);
    assert.deepEqual(new Set(thread.body.data.map((m: { id: string }) => m.id)), new Set([parentId, r.body.data.message_id]));
    // By Message-ID too.
    const r2 = await call('POST', '/api/v1/mailbox/messages/send', {
      to: [{ email: 'bob@example.org' }], subject: 'Re: Question', text_body: 'More.', custom_headers: { 'In-Reply-To': '<q1@example.org>' },
    });
    assert.equal((await call('GET', `/api/v1/mailbox/messages/${r2.body.data.message_id}`)).body.data.thread_id, parent.thread_id);
    const unknown = await call('POST', '/api/v1/mailbox/messages/send', { to: [{ email: 'bob@example.org' }], subject: 'x', custom_headers: { 'In-Reply-To': 'msg_aaaaaaaaaaaaaaaaaaaaaaaa' } });
    assert.equal(unknown.status, 422);
  });

  test('Idempotency-Key: a replay returns the original answer; another body is 409', async () => {
    const body = { to: [{ email: 'c@example.org' }], subject: 'Once', text_body: 'only once' };
    const a = await call('POST', '/api/v1/mailbox/messages/send', body, { 'idempotency-key': 'send-1' });
    const b = await call('POST', '/api/v1/mailbox/messages/send', body, { 'idempotency-key': 'send-1' });
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    assert.equal(b.body.data.message_id, a.body.data.message_id);
    assert.equal(b.headers['idempotent-replayed'], 'true');
    const c = await call('POST', '/api/v1/mailbox/messages/send', { ...body, subject: 'Twice' }, { 'idempotency-key': 'send-1' });
    assert.equal(c.status, 409);
    assert.equal(c.body.error.code, 'idempotency_conflict');
    const sent = await call('GET', '/api/v1/mailbox/messages?folder_id=sent&subject=Once');
    assert.equal(sent.body.data.length, 1, 'stored once');
  });

  test('validation and limits: 400 schema, 422 semantic, 413 sizes', async () => {
    const send = (body: unknown) => call('POST', '/api/v1/mailbox/messages/send', body);
    assert.equal((await send({ subject: 'no to' })).status, 400);
    assert.equal((await send({ to: [], subject: 'empty' })).status, 400);
    assert.equal((await send({ to: [{ email: 'not-an-address' }], subject: 'x' })).status, 400);
    assert.equal((await send({ to: [{ email: 'a@example.org' }], subject: 'x', extra: 1 })).status, 400);
    assert.equal((await send({ to: [{ email: 'a@example.org' }], subject: 'line\r\nBcc: evil@example.org' })).status, 400);
    assert.equal((await send({ to: [{ email: 'a@example.org' }], subject: 'x', custom_headers: { From: 'x@example.org' } })).status, 400);
    assert.equal((await send({ to: [{ email: 'a@example.org' }], subject: 'x', custom_headers: { 'X-A': 'a\r\nB: c' } })).status, 400);
    const many = Array.from({ length: 51 }, (_, i) => ({ email: `r${i}@example.org` }));
    const tooMany = await send({ to: many, subject: 'x' });
    assert.equal(tooMany.status, 422);
    assert.equal(tooMany.body.error.code, 'validation_error');
    const otherFrom = await send({ to: [{ email: 'a@example.org' }], from: { email: 'someone@else.org' }, subject: 'x' });
    assert.equal(otherFrom.status, 422);
    const badB64 = await send({ to: [{ email: 'a@example.org' }], subject: 'x', attachments: [{ filename: 'a.txt', content_type: 'text/plain', content: '!!!' }] });
    assert.equal(badB64.status, 400);
    const big = Buffer.alloc(5_000_001, 1).toString('base64');
    const inline = await send({ to: [{ email: 'a@example.org' }], subject: 'x', attachments: [{ filename: 'a.bin', content_type: 'application/octet-stream', content: big }] });
    assert.equal(inline.status, 413);
    assert.equal(inline.body.error.code, 'payload_too_large');
    const unknownBlob = await send({ to: [{ email: 'a@example.org' }], subject: 'x', attachments: [{ filename: 'a.pdf', content_type: 'application/pdf', blob_id: 'blob_aaaaaaaaaaaaaaaaaaaaaaaa' }] });
    assert.equal(unknownBlob.status, 422);
    // Four 7.5 MB uploads are 30 MB before base64: the final message is over 25 MB.
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const u = await upload(Buffer.alloc(7_000_000, i + 1), `part${i}.bin`, 'application/octet-stream');
      assert.equal(u.status, 200, u.text);
      ids.push(u.body.data.blob_id);
    }
    const huge = await send({ to: [{ email: 'a@example.org' }], subject: 'x', attachments: ids.map((blob_id, i) => ({ filename: `p${i}.bin`, content_type: 'application/octet-stream', blob_id })) });
    assert.equal(huge.status, 413);
    assert.equal((await call('GET', '/api/v1/mailbox/messages?folder_id=sent&subject=x')).body.data.length, 0, 'nothing stored for refused sends');
  });

  test('direct upload: blob id sent as an attachment; 7.5 MB limit; filename required', async () => {
    const pdf = Buffer.from('%PDF-1.4\n% test document\n');
    const u = await upload(pdf, 'invoice.pdf');
    assert.equal(u.status, 200, u.text);
    assert.match(u.body.data.blob_id, /^blob_[a-z0-9]{24}$/);
    assert.deepEqual({ ...u.body.data, blob_id: 'x' }, { blob_id: 'x', filename: 'invoice.pdf', content_type: 'application/pdf', size_bytes: pdf.byteLength });
    const json = await upload(Buffer.from('{"a":1}'), 'data.json', 'application/json');
    assert.equal(json.status, 200, 'a JSON file is bytes, not a request body');
    assert.equal(json.body.data.size_bytes, 7);
    assert.equal((await upload(Buffer.alloc(7_500_001), 'big.bin')).status, 413);
    const noName = await app.api('POST', '/api/v1/mailbox/attachments:upload', { token: mbx.key, rawBody: pdf, headers: { 'content-type': 'application/pdf' } });
    assert.equal(noName.status, 400);
    const r = await call('POST', '/api/v1/mailbox/messages/send', {
      to: [{ email: 'a@example.org' }], subject: 'Invoice', text_body: 'Attached.',
      attachments: [{ filename: 'invoice.pdf', content_type: 'application/pdf', blob_id: u.body.data.blob_id }, { filename: 'note.txt', content_type: 'text/plain', content: Buffer.from('hello note').toString('base64') }],
    });
    assert.equal(r.status, 200, r.text);
    const m = (await call('GET', `/api/v1/mailbox/messages/${r.body.data.message_id}`)).body.data;
    assert.deepEqual(m.attachments.map((a: { filename: string }) => a.filename).sort(), ['invoice.pdf', 'note.txt']);
    const att = m.attachments.find((a: { filename: string }) => a.filename === 'invoice.pdf');
    const bytes = await call('GET', `/api/v1/mailbox/messages/${m.id}/attachments/${att.id}`);
    assert.equal(bytes.status, 200);
    assert.equal(bytes.text, pdf.toString());
    // Another mailbox cannot use this blob.
    const other = await createMailbox(app, 'other');
    const stolen = await app.api('POST', '/api/v1/mailbox/messages/send', { token: other.key, body: { to: [{ email: 'a@example.org' }], subject: 'x', attachments: [{ filename: 'i.pdf', content_type: 'application/pdf', blob_id: u.body.data.blob_id }] } });
    assert.equal(stolen.status, 422);
  });

  test('presigned upload: exact Content-Type and Content-Length, token checked, short-lived, then sendable', async () => {
    const bytes = Buffer.from('col1,col2\n1,2\n');
    const intent = await call('POST', '/api/v1/mailbox/attachment-uploads', { filename: 'data.csv', content_type: 'text/csv', size_bytes: bytes.byteLength });
    assert.equal(intent.status, 200, intent.text);
    const d = intent.body.data;
    assert.match(d.upload_id, /^upl_/);
    assert.equal(d.method, 'PUT');
    assert.deepEqual(d.headers, { 'Content-Type': 'text/csv', 'Content-Length': String(bytes.byteLength) });
    assert.equal(d.max_size_bytes, 7_500_000);
    assert.ok(Date.parse(d.expires_at) > Date.now());
    const url = new URL(d.upload_url);
    assert.equal(url.pathname, `/api/v1/mailbox/attachment-uploads/${d.upload_id}`);
    const token = url.searchParams.get('upload_token')!;
    const stored = await app.services.store.uploads.getIntent(d.upload_id);
    assert.ok(stored && !stored.token_hash.includes(token) && stored.token_hash.length === 64, 'only the token hash is stored');
    const put = (t: string, headers: Record<string, string>, body: Buffer) =>
      app.http.inject({ method: 'PUT', url: `/api/v1/mailbox/attachment-uploads/${d.upload_id}?upload_token=${t}`, headers, payload: body });
    assert.equal((await put('smx_upload_wrong', { 'content-type': 'text/csv' }, bytes)).statusCode, 401);
    assert.equal((await put(token, { 'content-type': 'text/plain' }, bytes)).statusCode, 400);
    assert.equal((await put(token, { 'content-type': 'text/csv' }, Buffer.concat([bytes, Buffer.from('x')]))).statusCode, 400);
    const ok = await put(token, { 'content-type': 'text/csv' }, bytes);
    assert.equal(ok.statusCode, 200, ok.body);
    const blob = JSON.parse(ok.body).data;
    assert.match(blob.blob_id, /^blob_/);
    assert.equal(blob.size_bytes, bytes.byteLength);
    const again = await put(token, { 'content-type': 'text/csv' }, bytes);
    assert.equal(JSON.parse(again.body).data.blob_id, blob.blob_id, 'a repeated PUT answers the same blob');
    const changed = await put(token, { 'content-type': 'text/csv' }, Buffer.from('col1,col2\n3,4\n'));
    assert.equal(changed.statusCode, 409);
    const r = await call('POST', '/api/v1/mailbox/messages/send', { to: [{ email: 'a@example.org' }], subject: 'CSV', text_body: 'data', attachments: [{ filename: 'data.csv', content_type: 'text/csv', blob_id: blob.blob_id }] });
    assert.equal(r.status, 200, r.text);
    assert.equal((await call('POST', '/api/v1/mailbox/attachment-uploads', { filename: 'big.bin', content_type: 'application/pdf', size_bytes: 7_500_001 })).status, 413);
    assert.equal((await call('POST', '/api/v1/mailbox/attachment-uploads', { filename: 'a.pdf', content_type: 'application/pdf', size_bytes: 0 })).status, 400);
    // An expired intent is gone.
    const late = await app.services.uploads.createIntent({ surface: 'mailbox', teamId: app.teamId, mailboxId: mbx.id, filename: 'x.pdf', contentType: 'application/pdf', sizeBytes: 3 });
    await app.services.store.uploads.insertIntent({ ...late.intent, id: 'upl_expiredexpiredexpired1', expires_at: new Date(Date.now() - 1000).toISOString() });
    const expired = await app.http.inject({ method: 'PUT', url: '/api/v1/mailbox/attachment-uploads/upl_expiredexpiredexpired1?upload_token=x', headers: { 'content-type': 'application/pdf' }, payload: 'abc' });
    assert.equal(expired.statusCode, 404);
  });

  test('expired uploads cannot be sent and are purged with their bytes', async () => {
    const u = await upload(Buffer.from('%PDF-1.4 expiring'), 'old.pdf');
    const row = (await app.services.store.uploads.get(u.body.data.blob_id))!;
    await app.services.store.uploads.insert({ ...row, id: 'blob_expiredexpiredexpired', expires_at: new Date(Date.now() - 1000).toISOString(), sha256: row.sha256 });
    const late = await call('POST', '/api/v1/mailbox/messages/send', { to: [{ email: 'a@example.org' }], subject: 'late', attachments: [{ filename: 'old.pdf', content_type: 'application/pdf', blob_id: 'blob_expiredexpiredexpired' }] });
    assert.equal(late.status, 422);
    assert.ok((await app.services.uploads.purgeExpired()) >= 1);
    assert.equal(await app.services.store.uploads.get('blob_expiredexpiredexpired'), undefined);
    assert.ok(await app.services.store.blobs.get(row.sha256), 'bytes kept while a live upload uses them');
  });

  test('the session reports sending as available', async () => {
    const s = await call('GET', '/api/v1/mailbox/session');
    assert.equal(s.body.data.capabilities.submissions.send, true);
    assert.equal(s.body.data.capabilities.attachments.upload, true);
  });
});
