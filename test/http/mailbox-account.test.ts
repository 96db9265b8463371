// Mailbox API account reads: me, session, identity, identities, granted mailboxes, quotas, usage,
// and the credential rules (root key refused, mailbox_id outside the grant, isolation).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { describeEachBackend } from '../helpers/backends.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { createMailbox, deliver, type TestMailbox } from '../helpers/mail.ts';

describeEachBackend('mailbox API account', (backend) => {
  let app: TestApp;
  let mbx: TestMailbox;
  let other: TestMailbox;
  before(async () => {
    app = await startTestApp(backend);
    mbx = await createMailbox(app, 'agent');
    other = await createMailbox(app, 'other');
  });
  after(async () => app.close());

  test('me returns the credential mailbox with live quota usage and an ETag', async () => {
    const me = await app.api('GET', '/api/v1/mailbox/me', { token: mbx.key });
    assert.equal(me.status, 200);
    assert.equal(me.body.data.id, mbx.id);
    assert.equal(me.body.data.quota_used_bytes, 0);
    const again = await app.api('GET', '/api/v1/mailbox/me', { token: mbx.key, headers: { 'if-none-match': String(me.headers.etag) } });
    assert.equal(again.status, 304);
    await deliver(app, mbx, { text: 'hello' });
    const after1 = await app.api('GET', '/api/v1/mailbox/me', { token: mbx.key, headers: { 'if-none-match': String(me.headers.etag) } });
    assert.equal(after1.status, 200);
    assert.ok(after1.body.data.quota_used_bytes > 0);
  });

  test('session reports states, limits and honest capabilities', async () => {
    const s = await app.api('GET', '/api/v1/mailbox/session', { token: mbx.key });
    assert.equal(s.status, 200);
    assert.equal(s.body.data.mailbox.email, mbx.email);
    assert.equal(s.body.data.limits.batch_ids_max, 100);
    assert.equal(s.body.data.capabilities.messages.list, true);
    for (const k of ['messages', 'folders', 'threads', 'submissions', 'identities', 'quotas']) assert.equal(typeof s.body.data.states[k], 'string');
    const before1 = s.body.data.states.messages;
    await deliver(app, mbx, { text: 'state moves' });
    const s2 = await app.api('GET', '/api/v1/mailbox/session', { token: mbx.key });
    assert.notEqual(s2.body.data.states.messages, before1);
  });

  test('identity can be read and patched; identities lists it with identity_state', async () => {
    const id = await app.api('GET', '/api/v1/mailbox/identity', { token: mbx.key });
    assert.equal(id.status, 200);
    assert.equal(id.body.data.email, mbx.email);
    const p = await app.api('PATCH', '/api/v1/mailbox/identity', { token: mbx.key, body: { name: 'Support Bot', text_signature: '-- \nBot', html_signature: '<p>Bot</p>' } });
    assert.equal(p.status, 200);
    assert.equal(p.body.data.name, 'Support Bot');
    const cleared = await app.api('PATCH', '/api/v1/mailbox/identity', { token: mbx.key, body: { name: null } });
    assert.equal(cleared.body.data.name, '');
    const bad = await app.api('PATCH', '/api/v1/mailbox/identity', { token: mbx.key, body: { text_signature: 'x'.repeat(2048) } });
    assert.equal(bad.status, 400);
    const list = await app.api('GET', '/api/v1/mailbox/identities', { token: mbx.key });
    assert.equal(list.body.data.length, 1);
    assert.equal(typeof list.body.meta.identity_state, 'string');
  });

  test('quotas and usage agree with stored bytes', async () => {
    const q = await app.api('GET', '/api/v1/mailbox/quotas', { token: mbx.key });
    assert.equal(q.status, 200);
    const me = await app.api('GET', '/api/v1/mailbox/me', { token: mbx.key });
    assert.equal(q.body.data[0].used, me.body.data.quota_used_bytes);
    assert.equal(q.body.data[0].hard_limit, me.body.data.quota_bytes);
    const u = await app.api('GET', '/api/v1/mailbox/usage', { token: mbx.key });
    assert.equal(u.body.data.resources[0].used, me.body.data.quota_used_bytes);
    assert.equal(u.body.data.resources[0].limit_status, 'ok');
    const bad = await app.api('GET', '/api/v1/mailbox/quotas?sort_by=nope', { token: mbx.key });
    assert.equal(bad.status, 400);
  });

  test('granted mailboxes is exactly the key mailbox', async () => {
    const r = await app.api('GET', '/api/v1/mailbox/mailboxes', { token: mbx.key });
    assert.deepEqual(r.body.data, [{ id: mbx.id, email: mbx.email }]);
  });

  test('root key is refused on mailbox routes; mailbox_id outside the grant is 403', async () => {
    const r = await app.api('GET', '/api/v1/mailbox/me');
    assert.equal(r.status, 403);
    assert.equal(r.body.error.code, 'insufficient_permissions');
    const cross = await app.api('GET', `/api/v1/mailbox/messages?mailbox_id=${other.id}`, { token: mbx.key });
    assert.equal(cross.status, 403);
    const own = await app.api('GET', `/api/v1/mailbox/messages?mailbox_id=${mbx.id}`, { token: mbx.key });
    assert.equal(own.status, 200);
  });

  test("one mailbox's key never reaches another mailbox's messages", async () => {
    const theirs = await deliver(app, other, { subject: 'private', text: 'for other only' });
    for (const [method, url] of [
      ['GET', `/api/v1/mailbox/messages/${theirs}`],
      ['GET', `/api/v1/mailbox/messages/${theirs}/body`],
      ['GET', `/api/v1/mailbox/messages/${theirs}/content`],
      ['PATCH', `/api/v1/mailbox/messages/${theirs}`],
      ['DELETE', `/api/v1/mailbox/messages/${theirs}`],
    ] as const) {
      const r = await app.api(method, url, { token: mbx.key, ...(method === 'PATCH' ? { body: { seen: true } } : {}) });
      assert.equal(r.status, 404, `${method} ${url}`);
    }
    const list = await app.api('GET', '/api/v1/mailbox/messages?q=private', { token: mbx.key });
    assert.equal(list.body.data.length, 0);
    const batch = await app.api('POST', '/api/v1/mailbox/messages:batch-get', { token: mbx.key, body: { ids: [theirs] } });
    assert.deepEqual(batch.body.data.not_found, [theirs]);
    const still = await app.api('GET', `/api/v1/mailbox/messages/${theirs}`, { token: other.key });
    assert.equal(still.status, 200);
  });
});
