// The HTTP contract layer across operations: authentication and surface, the error envelope for
// unknown routes and bad bodies, body limit, rate limits, Idempotency-Key, cursor stability and
// Cache-Control.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { describeEachBackend } from '../helpers/backends.ts';
import { MutableClock, startTestApp, type TestApp } from '../helpers/app.ts';
import { assertError, createMailbox, rawApi } from '../helpers/management.ts';

const DOMAIN = 'agents.mailmux.test';

describeEachBackend('http contract', (backend) => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp(backend);
  });
  after(async () => app.close());

  describe('authentication and surface', () => {
    test('401 authentication_required without, with a bad and with a revoked key', async () => {
      const revoked = await app.services.teams.createRootKey('to revoke');
      assert.equal((await app.api('GET', '/api/v1/domains', { token: revoked.secret })).status, 200);
      await app.services.teams.revokeRootKey(revoked.id);
      const tokens = [null, 'smx_root_doesnotexist', 'not-a-key', `smx_mbx_${'A'.repeat(40)}`, revoked.secret];
      for (const token of tokens) {
        const res = await app.api('GET', '/api/v1/domains', { token });
        assertError(res, 401, 'authentication_required');
        assert.equal(res.body.error.retryable, false);
      }
      const malformed = await app.api('GET', '/api/v1/mailboxes', { token: null, headers: { authorization: `Basic ${app.rootKey}` } });
      assertError(malformed, 401, 'authentication_required');
    });

    test('a mailbox key on a management route: 403 insufficient_permissions', async () => {
      const { credential } = await createMailbox(app, `surface@${DOMAIN}`);
      for (const url of ['/api/v1/domains', '/api/v1/mailboxes']) {
        assertError(await app.api('GET', url, { token: credential.secret }), 403, 'insufficient_permissions');
      }
      const before = (await app.api('GET', '/api/v1/domains')).body.data.length;
      // POST /domains lists no 403 in the spec, hence the raw client.
      assertError(await rawApi(app, 'POST', '/api/v1/domains', { token: credential.secret, body: { domain: 'sneaky.com' } }), 403, 'insufficient_permissions');
      assert.equal((await app.api('GET', '/api/v1/domains')).body.data.length, before);
    });
  });

  describe('error envelope', () => {
    test('unknown route: 404 not_found envelope', async () => {
      for (const [method, url] of [['GET', '/api/v1/nope'], ['POST', '/api/v1/domains/x/y/z'], ['GET', '/']]) {
        const res = await rawApi(app, method as string, url as string);
        assertError(res, 404, 'not_found');
      }
    });

    test('invalid JSON and wrong Content-Type: 400 invalid_parameter', async () => {
      const bad = await app.api('POST', '/api/v1/domains', { rawBody: '{"domain": "acme.com"', headers: { 'content-type': 'application/json' } });
      assertError(bad, 400, 'invalid_parameter');
      const text = await app.api('POST', '/api/v1/domains', { rawBody: '{"domain":"acme.com"}', headers: { 'content-type': 'text/plain' } });
      assertError(text, 400, 'invalid_parameter');
      const form = await app.api('POST', '/api/v1/mailboxes', { rawBody: `email=x@${DOMAIN}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assertError(form, 400, 'invalid_parameter');
      const none = await app.api('POST', '/api/v1/domains', { rawBody: '', headers: { 'content-type': 'application/json' } });
      assertError(none, 400, 'invalid_parameter');
      assert.equal((await app.api('GET', '/api/v1/domains')).body.data.length, 0);
    });

    test('application/json with a charset parameter is JSON', async () => {
      const res = await app.api('POST', '/api/v1/domains', { rawBody: '{"domain":"charset.com"}', headers: { 'content-type': 'application/json; charset=utf-8' } });
      assert.equal(res.status, 201, res.text);
    });

    test('invalid list queries: 400 invalid_parameter', async () => {
      for (const q of ['limit=0', 'limit=101', 'limit=abc', 'cursor=not-a-cursor']) {
        assertError(await rawApi(app, 'GET', `/api/v1/domains?${q}`), 400, 'invalid_parameter');
      }
      assertError(await rawApi(app, 'GET', '/api/v1/mailboxes?include_deleted=yes'), 400, 'invalid_parameter');
    });
  });

  describe('Idempotency-Key', () => {
    test('POST /domains: replay returns the original response and creates once', async () => {
      const headers = { 'idempotency-key': 'create-domain-1' };
      const first = await app.api('POST', '/api/v1/domains', { body: { domain: 'idem.com' }, headers });
      assert.equal(first.status, 201);
      const replay = await app.api('POST', '/api/v1/domains', { body: { domain: 'idem.com' }, headers });
      assert.equal(replay.status, 201, replay.text);
      assert.deepEqual(replay.body, first.body);
      assert.equal(replay.headers['idempotent-replayed'], 'true');
      assert.equal(replay.headers.location, first.headers.location);
      assert.equal(replay.headers.etag, first.headers.etag);
      assert.equal((await app.api('GET', '/api/v1/domains?limit=100')).body.data.filter((d: any) => d.domain === 'idem.com').length, 1);
      const conflict = await app.api('POST', '/api/v1/domains', { body: { domain: 'other-idem.com' }, headers });
      assertError(conflict, 409, 'idempotency_conflict');
      // Without the key the same body is a new request: the domain exists.
      assertError(await app.api('POST', '/api/v1/domains', { body: { domain: 'idem.com' } }), 409, 'conflict');
    });

    test('POST /mailboxes: replay returns the same mailbox without showing the secret again; body change 409', async () => {
      const headers = { 'idempotency-key': 'create-mailbox-1' };
      const body = { email: `idem@${DOMAIN}`, display_name: 'Idem' };
      const first = await app.api('POST', '/api/v1/mailboxes', { body, headers });
      assert.equal(first.status, 201);
      const replay = await app.api('POST', '/api/v1/mailboxes', { body: { display_name: 'Idem', email: `idem@${DOMAIN}` }, headers });
      assert.equal(replay.status, 201);
      assert.deepEqual(replay.body.data.mailbox, first.body.data.mailbox);
      assert.equal(replay.body.meta.request_id, first.body.meta.request_id);
      // Secrets are shown once: the replay carries no credential, and the cache never stored it.
      assert.equal(replay.body.data.credential, null);
      assert.match(replay.body.data.warning, /shown once/);
      const now = new Date();
      const stored = await app.services.store.idempotency.claim({ scope: `team:${app.teamId}:POST /mailboxes`, key: 'create-mailbox-1', fingerprint: 'probe', state: 'in_flight', status_code: null, response: null, created_at: now.toISOString(), expires_at: new Date(now.getTime() + 1000).toISOString() });
      assert.ok(stored?.response, 'the original response is cached');
      assert.ok(!stored.response.includes(first.body.data.credential.secret));
      const list = (await app.api('GET', '/api/v1/mailboxes?limit=100')).body.data.filter((m: any) => m.email === `idem@${DOMAIN}`);
      assert.equal(list.length, 1);
      assert.equal(await app.services.store.keys.countActiveMailboxKeys(app.teamId), (await app.api('GET', '/api/v1/mailboxes?limit=100')).body.data.length);
      assertError(await app.api('POST', '/api/v1/mailboxes', { body: { ...body, display_name: 'Changed' }, headers }), 409, 'idempotency_conflict');
      // The same key on another endpoint is its own scope.
      assert.equal((await app.api('POST', '/api/v1/domains', { body: { domain: 'idem-scope.com' }, headers })).status, 201);
    });

    test('an error answer is replayed as well', async () => {
      const headers = { 'idempotency-key': 'reserved-1' };
      const first = await app.api('POST', '/api/v1/mailboxes', { body: { email: `postmaster@${DOMAIN}` }, headers });
      assertError(first, 422, 'validation_error');
      const replay = await app.api('POST', '/api/v1/mailboxes', { body: { email: `postmaster@${DOMAIN}` }, headers });
      assert.equal(replay.status, 422);
      assert.deepEqual(replay.body, first.body);
    });

    test('the same key while the first request is still running: 409 idempotency_conflict', async () => {
      const headers = { 'idempotency-key': 'concurrent-1' };
      const both = await Promise.all([1, 2].map(() => app.api('POST', '/api/v1/domains', { body: { domain: 'concurrent.com' }, headers })));
      assert.deepEqual(both.map((r) => r.status).sort(), [201, 409]);
      assertError(both.find((r) => r.status === 409)!, 409, 'idempotency_conflict');
      const later = await app.api('POST', '/api/v1/domains', { body: { domain: 'concurrent.com' }, headers });
      assert.deepEqual(later.body, both.find((r) => r.status === 201)!.body);
    });

    test('key length: 255 accepted, 256 is 400', async () => {
      assert.equal((await app.api('POST', '/api/v1/domains', { body: { domain: 'long-key.com' }, headers: { 'idempotency-key': 'k'.repeat(255) } })).status, 201);
      const res = await app.api('POST', '/api/v1/domains', { body: { domain: 'too-long-key.com' }, headers: { 'idempotency-key': 'k'.repeat(256) } });
      assertError(res, 400, 'invalid_parameter');
      assert.equal((await app.api('GET', '/api/v1/domains?limit=100')).body.data.filter((d: any) => d.domain === 'too-long-key.com').length, 0);
    });

    test('suspend: the same key on a different mailbox id is 409; on the same id it replays', async () => {
      const a = await createMailbox(app, `idem-a@${DOMAIN}`);
      const b = await createMailbox(app, `idem-b@${DOMAIN}`);
      const headers = { 'idempotency-key': 'suspend-1' };
      const first = await app.api('POST', `/api/v1/mailboxes/${a.mailbox.id}/suspend`, { headers });
      assert.equal(first.status, 200);
      const replay = await app.api('POST', `/api/v1/mailboxes/${a.mailbox.id}/suspend`, { headers });
      assert.deepEqual(replay.body, first.body);
      assertError(await app.api('POST', `/api/v1/mailboxes/${b.mailbox.id}/suspend`, { headers }), 409, 'idempotency_conflict');
      assert.equal((await app.api('GET', `/api/v1/mailboxes/${b.mailbox.id}`)).body.data.status, 'active');
    });
  });

  test('Cache-Control: no-store on success, 304, errors, unknown routes and text answers', async () => {
    const { mailbox } = await createMailbox(app, `cache@${DOMAIN}`);
    const get = await app.api('GET', `/api/v1/mailboxes/${mailbox.id}`);
    const domain = await app.api('POST', '/api/v1/domains', { body: { domain: 'cache.com' } });
    const responses = [
      get,
      domain,
      await app.api('GET', `/api/v1/mailboxes/${mailbox.id}`, { headers: { 'if-none-match': String(get.headers.etag) } }),
      await app.api('GET', `/api/v1/domains/${domain.body.data.id}/zone-file`),
      await app.api('GET', '/api/v1/domains', { token: null }),
      await app.api('POST', '/api/v1/domains', { rawBody: '{', headers: { 'content-type': 'application/json' } }),
      await rawApi(app, 'GET', '/api/v1/nope'),
    ];
    assert.deepEqual(responses.map((r) => r.status), [200, 201, 304, 200, 401, 400, 404]);
    for (const r of responses) assert.equal(r.headers['cache-control'], 'no-store', `${r.status}`);
  });
});

describeEachBackend('http contract: limits', (backend) => {
  let app: TestApp;
  const clock = new MutableClock(Date.UTC(2026, 0, 1, 12, 0, 10));
  before(async () => {
    app = await startTestApp(backend, { MAILMUX_RATE_LIMIT_MANAGEMENT: '3', MAILMUX_BODY_LIMIT_BYTES: '2048' }, { clock });
  });
  after(async () => app.close());

  test('body over MAILMUX_BODY_LIMIT_BYTES: 413 payload_too_large', async () => {
    const res = await app.api('POST', '/api/v1/domains', { body: { domain: `${'a'.repeat(3000)}.com` } });
    assertError(res, 413, 'payload_too_large');
    assert.equal(res.headers['cache-control'], 'no-store');
  });

  test('rate limit: headers on every response, the 4th request 429 with Retry-After, a new window resets', async () => {
    clock.t += 60_000;
    const resetAt = Math.ceil((clock.t - (clock.t % 60_000) + 60_000) / 1000);
    const answers = [
      await app.api('GET', '/api/v1/domains'),
      await app.api('GET', '/api/v1/domains/mdom_doesnotexist0000000000000'),
      await app.api('POST', '/api/v1/domains', { body: { domain: 'BAD' } }),
    ];
    assert.deepEqual(answers.map((r) => r.status), [200, 404, 400]);
    answers.forEach((r, i) => {
      assert.equal(r.headers['x-ratelimit-limit'], '3');
      assert.equal(r.headers['x-ratelimit-remaining'], String(2 - i));
      assert.equal(r.headers['x-ratelimit-reset'], String(resetAt));
    });
    const limited = await rawApi(app, 'GET', '/api/v1/domains');
    assertError(limited, 429, 'rate_limit_exceeded');
    assert.equal(limited.body.error.retryable, true);
    assert.equal(limited.headers['retry-after'], '50');
    assert.equal(limited.headers['x-ratelimit-remaining'], '0');
    assert.equal(limited.headers['x-ratelimit-reset'], String(resetAt));
    assert.equal(limited.headers['cache-control'], 'no-store');
    // Another key has its own budget; so does the next window.
    const other = await app.services.teams.createRootKey('second');
    assert.equal((await app.api('GET', '/api/v1/domains', { token: other.secret })).status, 200);
    clock.t = resetAt * 1000;
    const fresh = await app.api('GET', '/api/v1/domains');
    assert.equal(fresh.status, 200);
    assert.equal(fresh.headers['x-ratelimit-remaining'], '2');
  });

  test('unauthenticated answers carry rate-limit headers too', async () => {
    const res = await app.api('GET', '/api/v1/domains', { token: null });
    assert.equal(res.status, 401);
    assert.equal(res.headers['x-ratelimit-limit'], String(app.config.rateLimits.unauthenticated));
    assert.ok(res.headers['x-ratelimit-remaining'] !== undefined && res.headers['x-ratelimit-reset'] !== undefined);
  });

  test('cursor pagination is stable under inserts: no duplicates, no gaps', async () => {
    const create = async (n: number): Promise<string> => {
      clock.t += 1000;
      return (await app.services.mailboxes.create(app.teamId, { email: `page-${n}@${DOMAIN}` })).mailbox.id;
    };
    // Each list call starts a new rate-limit window (the limit here is 3 per window).
    const list = async (query: string): Promise<any> => {
      clock.t += 60_000;
      const res = await app.api('GET', `/api/v1/mailboxes?${query}`);
      assert.equal(res.status, 200, res.text);
      return res.body;
    };
    const original: string[] = [];
    for (let n = 0; n < 5; n += 1) original.unshift(await create(n));
    const page1 = await list('limit=2');
    assert.deepEqual(page1.data.map((m: any) => m.id), original.slice(0, 2));
    const newer = [await create(10), await create(11)];
    const page2 = await list(`limit=2&cursor=${page1.pagination.next_cursor}`);
    assert.deepEqual(page2.data.map((m: any) => m.id), original.slice(2, 4));
    const page3 = await list(`limit=2&cursor=${page2.pagination.next_cursor}`);
    assert.deepEqual(page3.data.map((m: any) => m.id), original.slice(4));
    assert.equal(page3.pagination.has_more, false);
    assert.equal(page3.pagination.next_cursor, undefined);
    const fresh = await list('limit=2');
    assert.deepEqual(fresh.data.map((m: any) => m.id), newer.reverse());
  });
});
