// Webhooks Management API (tag Webhooks) against the contract: create with the secret shown once,
// list, get with ETag / If-None-Match, patch with If-Match, the 422 rules, delete, rotate-secret,
// test (409 unless subscribed), Idempotency-Key replays, deliveries with their filters and the
// other team's 404s. Delivery itself is in test/workers/webhooks.test.ts.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { describeEachBackend } from '../helpers/backends.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { assertError, rawApi, secondTeam } from '../helpers/management.ts';
import { createMailbox } from '../helpers/mail.ts';

const HOOK = 'https://hooks.example.com/sendmux';

describeEachBackend('webhooks API', (backend) => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp(backend, { MAILMUX_MAX_WEBHOOKS_PER_TEAM: '6' });
  });
  after(async () => app.close());

  const create = async (body: Record<string, unknown>, headers?: Record<string, string>) => app.api('POST', '/api/v1/webhooks', { body, ...(headers ? { headers } : {}) });

  test('create returns the secret once, with Location; get and list never show it', async () => {
    const mbx = await createMailbox(app, 'scoped');
    const r = await create({ url: HOOK, event_types: ['message.received', 'message.bounced'], name: 'Inbound', filters: { mailbox_ids: [mbx.id] } });
    assert.equal(r.status, 201, r.text);
    const w = r.body.data;
    assert.match(w.id, /^whk_[a-z0-9]{24}$/);
    assert.match(w.secret, /^whsec_[A-Za-z0-9]{40}$/);
    assert.equal(r.headers.location, `/api/v1/webhooks/${w.id}`);
    assert.deepEqual(
      { name: w.name, url: w.url, event_types: w.event_types, filters: w.filters, enabled: w.enabled, failing: w.failing },
      { name: 'Inbound', url: HOOK, event_types: ['message.received', 'message.bounced'], filters: { mailbox_ids: [mbx.id] }, enabled: true, failing: false },
    );
    const g = await app.api('GET', `/api/v1/webhooks/${w.id}`);
    assert.equal(g.status, 200);
    assert.equal(g.body.data.secret, undefined);
    assert.ok(!g.text.includes(w.secret));
    assert.match(String(g.headers.etag), /^W\/"[0-9a-f]{16}"$/);
    const nm = await app.api('GET', `/api/v1/webhooks/${w.id}`, { headers: { 'if-none-match': String(g.headers.etag) } });
    assert.equal(nm.status, 304);
    const list = await app.api('GET', '/api/v1/webhooks');
    assert.equal(list.status, 200);
    assert.ok(list.body.data.some((x: { id: string }) => x.id === w.id));
    assert.ok(!list.text.includes(w.secret));
    // Defaults: enabled true, team-wide, name null.
    const d = await create({ url: HOOK, event_types: ['sendmux.test'] });
    assert.equal(d.body.data.enabled, true);
    assert.equal(d.body.data.name, null);
    assert.deepEqual(d.body.data.filters, { mailbox_ids: [] });
  });

  test('validation: non-https, unknown or no event types are 422; bad shapes are 400; foreign mailboxes 422', async () => {
    assertError(await create({ url: 'http://hooks.example.com/x', event_types: ['message.received'] }), 422, 'validation_error');
    assertError(await create({ url: HOOK, event_types: ['message.exploded'] }), 422, 'validation_error');
    assertError(await create({ url: HOOK, event_types: [] }), 422, 'validation_error');
    assertError(await create({ url: HOOK }), 400, 'invalid_parameter');
    assertError(await create({ url: HOOK, event_types: ['message.received'], secret: 'mine' }), 400, 'invalid_parameter');
    assertError(await create({ url: 'not a url', event_types: ['message.received'] }), 400, 'invalid_parameter');
    assertError(await create({ url: HOOK, event_types: ['message.received'], filters: { mailbox_ids: ['mbx_000000000000000000000000'] } }), 422, 'validation_error');
  });

  test('patch: partial update, If-Match, replace lists, name null clears, 422 rules', async () => {
    const w = (await create({ url: HOOK, event_types: ['message.received'], name: 'A' })).body.data;
    const g = await app.api('GET', `/api/v1/webhooks/${w.id}`);
    const stale = await app.api('PATCH', `/api/v1/webhooks/${w.id}`, { body: { name: 'B' }, headers: { 'if-match': 'W/"0000000000000000"' } });
    assertError(stale, 409, 'conflict');
    assert.equal(stale.headers.etag, g.headers.etag);
    const p = await app.api('PATCH', `/api/v1/webhooks/${w.id}`, { body: { name: null, event_types: ['message.bounced', 'sendmux.test'] }, headers: { 'if-match': String(g.headers.etag) } });
    assert.equal(p.status, 200, p.text);
    assert.equal(p.body.data.name, null);
    assert.equal(p.body.data.url, HOOK);
    assert.deepEqual(p.body.data.event_types, ['message.bounced', 'sendmux.test']);
    assert.notEqual(p.headers.etag, g.headers.etag);
    assert.equal((await app.api('GET', `/api/v1/webhooks/${w.id}`, { headers: { 'if-none-match': String(p.headers.etag) } })).status, 304);
    assertError(await app.api('PATCH', `/api/v1/webhooks/${w.id}`, { body: { url: 'http://insecure.example/' } }), 422, 'validation_error');
    assertError(await app.api('PATCH', `/api/v1/webhooks/${w.id}`, { body: { event_types: [] } }), 422, 'validation_error');
    assertError(await app.api('PATCH', `/api/v1/webhooks/${w.id}`, { body: { enabled: 'yes' } }), 400, 'invalid_parameter');
    const off = await app.api('PATCH', `/api/v1/webhooks/${w.id}`, { body: { enabled: false } });
    assert.equal(off.body.data.enabled, false);
    assertError(await app.api('PATCH', '/api/v1/webhooks/whk_000000000000000000000000', { body: { name: 'x' } }), 404, 'not_found');
  });

  test('rotate-secret: a new secret each time; an Idempotency-Key replay returns the same one, another webhook with the key is 409', async () => {
    const w = (await create({ url: HOOK, event_types: ['message.received'] })).body.data;
    const r1 = await app.api('POST', `/api/v1/webhooks/${w.id}/rotate-secret`);
    assert.equal(r1.status, 200, r1.text);
    assert.match(r1.body.data.secret, /^whsec_/);
    assert.notEqual(r1.body.data.secret, w.secret);
    const k = { 'idempotency-key': 'rotate-1' };
    const r2 = await app.api('POST', `/api/v1/webhooks/${w.id}/rotate-secret`, { headers: k });
    const r3 = await app.api('POST', `/api/v1/webhooks/${w.id}/rotate-secret`, { headers: k });
    assert.equal(r3.status, 200);
    assert.equal(r3.headers['idempotent-replayed'], 'true');
    assert.equal(r3.body.data.secret, r2.body.data.secret);
    assert.equal((await app.services.store.webhooks.get(w.id))?.secret, r2.body.data.secret);
    const other = (await create({ url: HOOK, event_types: ['message.received'] })).body.data;
    assertError(await app.api('POST', `/api/v1/webhooks/${other.id}/rotate-secret`, { headers: k }), 409, 'idempotency_conflict');
    assertError(await app.api('POST', '/api/v1/webhooks/whk_000000000000000000000000/rotate-secret'), 404, 'not_found');
  });

  test('create replays under an Idempotency-Key; a different body is 409', async () => {
    const k = { 'idempotency-key': 'create-1' };
    const a = await create({ url: HOOK, event_types: ['message.received'] }, k);
    const b = await create({ url: HOOK, event_types: ['message.received'] }, k);
    assert.equal(b.status, 201);
    assert.equal(b.body.data.id, a.body.data.id);
    assertError(await create({ url: HOOK, event_types: ['message.bounced'] }, k), 409, 'idempotency_conflict');
  });

  test('a team holds at most MAILMUX_MAX_WEBHOOKS_PER_TEAM webhooks', async () => {
    for (;;) {
      const r = await create({ url: HOOK, event_types: ['message.received'] });
      if (r.status === 409) {
        assertError(r, 409, 'limit_exceeded');
        break;
      }
      assert.equal(r.status, 201, r.text);
    }
    const list = await app.api('GET', '/api/v1/webhooks?limit=4');
    assert.equal(list.body.data.length, 4);
    assert.equal(list.body.pagination.has_more, true);
    const rest = await app.api('GET', `/api/v1/webhooks?limit=4&cursor=${list.body.pagination.next_cursor}`);
    assert.equal(rest.body.data.length, 2);
    assert.equal(rest.body.pagination.has_more, false);
    // Newest first.
    const all = [...list.body.data, ...rest.body.data];
    assert.deepEqual([...all].sort((x, y) => (x.created_at < y.created_at ? 1 : x.created_at > y.created_at ? -1 : 0)).map((x) => x.created_at), all.map((x) => x.created_at));
    for (const w of all) assert.equal((await app.api('DELETE', `/api/v1/webhooks/${w.id}`)).status, 200);
  });

  test('test: 409 unless subscribed to sendmux.test, event_id otherwise, replayed under its key', async () => {
    const w = (await create({ url: HOOK, event_types: ['message.received'] })).body.data;
    assertError(await app.api('POST', `/api/v1/webhooks/${w.id}/test`), 409, 'conflict');
    await app.api('PATCH', `/api/v1/webhooks/${w.id}`, { body: { event_types: ['message.received', 'sendmux.test'] } });
    const k = { 'idempotency-key': 'test-1' };
    const t1 = await app.api('POST', `/api/v1/webhooks/${w.id}/test`, { headers: k });
    assert.equal(t1.status, 200, t1.text);
    assert.match(t1.body.data.event_id, /^evt_/);
    const t2 = await app.api('POST', `/api/v1/webhooks/${w.id}/test`, { headers: k });
    assert.equal(t2.body.data.event_id, t1.body.data.event_id);
    const event = await app.services.store.events.get(t1.body.data.event_id);
    assert.equal(event?.type, 'sendmux.test');
    assert.equal(event?.webhook_id, w.id);
    // The outbox row was written with the event (no worker runs here, so it is still pending).
    const due = await app.services.store.webhooks.claim(new Date(Date.now() + 1000).toISOString(), new Date(Date.now() + 60_000).toISOString(), 100);
    assert.deepEqual(due.filter((d) => d.webhook_id === w.id).map((d) => d.event_id), [t1.body.data.event_id]);
    assertError(await app.api('POST', '/api/v1/webhooks/whk_000000000000000000000000/test'), 404, 'not_found');
  });

  test('deliveries: empty list with default limit, filters validated, unknown payload 404', async () => {
    const w = (await create({ url: HOOK, event_types: ['message.received'] })).body.data;
    const d = await app.api('GET', `/api/v1/webhooks/${w.id}/deliveries`);
    assert.equal(d.status, 200, d.text);
    assert.deepEqual(d.body.data, []);
    assert.equal(d.body.pagination.has_more, false);
    const f = await app.api('GET', `/api/v1/webhooks/${w.id}/deliveries?event_type=message.bounced&result=retrying&limit=100`);
    assert.equal(f.status, 200);
    assertError(await app.api('GET', `/api/v1/webhooks/${w.id}/deliveries?result=maybe`), 400, 'invalid_parameter');
    assertError(await rawApi(app, 'GET', `/api/v1/webhooks/${w.id}/deliveries?limit=101`), 400, 'invalid_parameter');
    assertError(await app.api('GET', `/api/v1/webhooks/${w.id}/deliveries/whda_000000000000000000000000/payload`), 404, 'not_found');
    assertError(await app.api('GET', '/api/v1/webhooks/whk_000000000000000000000000/deliveries'), 404, 'not_found');
  });

  test('another team sees 404 for every operation; mailbox keys get 403', async () => {
    const w = (await create({ url: HOOK, event_types: ['message.received', 'sendmux.test'] })).body.data;
    const other = await secondTeam(app);
    const as = { token: other.rootKey };
    assertError(await app.api('GET', `/api/v1/webhooks/${w.id}`, as), 404, 'not_found');
    assertError(await app.api('PATCH', `/api/v1/webhooks/${w.id}`, { ...as, body: { name: 'x' } }), 404, 'not_found');
    assertError(await app.api('DELETE', `/api/v1/webhooks/${w.id}`, as), 404, 'not_found');
    assertError(await app.api('POST', `/api/v1/webhooks/${w.id}/rotate-secret`, as), 404, 'not_found');
    assertError(await app.api('POST', `/api/v1/webhooks/${w.id}/test`, as), 404, 'not_found');
    assertError(await app.api('GET', `/api/v1/webhooks/${w.id}/deliveries`, as), 404, 'not_found');
    const list = await app.api('GET', '/api/v1/webhooks', as);
    assert.deepEqual(list.body.data, []);
    const mbx = await createMailbox(app, 'keyholder');
    assertError(await app.api('GET', '/api/v1/webhooks', { token: mbx.key }), 403, 'insufficient_permissions');
    // Another team's mailbox cannot be put in a filter.
    assertError(await app.api('POST', '/api/v1/webhooks', { ...as, body: { url: HOOK, event_types: ['message.received'], filters: { mailbox_ids: [mbx.id] } } }), 422, 'validation_error');
  });

  test('delete: 200 with the id, then 404; its outbox rows are dropped', async () => {
    const w = (await create({ url: HOOK, event_types: ['sendmux.test'] })).body.data;
    assert.equal((await app.api('POST', `/api/v1/webhooks/${w.id}/test`)).status, 200);
    const del = await app.api('DELETE', `/api/v1/webhooks/${w.id}`);
    assert.equal(del.status, 200);
    assert.deepEqual(del.body.data, { deleted: true, id: w.id });
    assertError(await app.api('GET', `/api/v1/webhooks/${w.id}`), 404, 'not_found');
    assertError(await app.api('DELETE', `/api/v1/webhooks/${w.id}`), 404, 'not_found');
    const due = await app.services.store.webhooks.claim(new Date(Date.now() + 1000).toISOString(), new Date(Date.now() + 60_000).toISOString(), 100);
    assert.equal(due.filter((d) => d.webhook_id === w.id).length, 0);
  });
});
