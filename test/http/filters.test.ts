// Sender filters (spec tags Mailbox Filters, Domain Filters): read, atomic replace with
// normalisation and validation, conditional requests; and the matching rules themselves.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { senderAllowed, type FilterState } from '../../src/services/filters.ts';
import { describeEachBackend } from '../helpers/backends.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { assertError, createDomain, createMailbox, DnsFixture, verifiedDomain } from '../helpers/management.ts';

const DOMAIN = 'agents.mailmux.test';

test('senderAllowed: off accepts all; allowlist and denylist match exact address or sender domain', () => {
  const off: FilterState = { mode: 'off', rules: [] };
  assert.equal(senderAllowed(off, 'anyone@anywhere.com'), true);
  const allow: FilterState = { mode: 'allowlist', rules: [{ type: 'allow', pattern: 'boss@corp.com' }, { type: 'allow', pattern: 'partner.com' }] };
  assert.equal(senderAllowed(allow, 'x@partner.com'), true);
  assert.equal(senderAllowed(allow, ' X@Partner.COM '), true);
  assert.equal(senderAllowed(allow, 'boss@corp.com'), true);
  assert.equal(senderAllowed(allow, 'Boss@Corp.com'), true);
  assert.equal(senderAllowed(allow, 'intern@corp.com'), false);
  assert.equal(senderAllowed(allow, 'x@sub.partner.com'), false);
  assert.equal(senderAllowed(allow, 'x@partner.com.evil.net'), false);
  const deny: FilterState = { mode: 'denylist', rules: [{ type: 'deny', pattern: 'spam.com' }, { type: 'deny', pattern: 'pest@ok.com' }] };
  assert.equal(senderAllowed(deny, 'a@spam.com'), false);
  assert.equal(senderAllowed(deny, 'A@SPAM.COM'), false);
  assert.equal(senderAllowed(deny, 'pest@ok.com'), false);
  assert.equal(senderAllowed(deny, 'friend@ok.com'), true);
});

describeEachBackend('filters', (backend) => {
  let app: TestApp;
  const dns = new DnsFixture();
  before(async () => {
    app = await startTestApp(backend, { MAILMUX_DNS_SERVERS: await dns.start() });
  });
  after(async () => {
    await dns.stop();
    await app?.close();
  });

  // Both owners behave the same; each case runs on a mailbox and on a send_receive domain.
  const owners: [string, () => Promise<string>][] = [
    ['mailbox', async () => `/api/v1/mailboxes/${(await createMailbox(app, `f-${Math.random().toString(36).slice(2, 10)}@${DOMAIN}`)).mailbox.id}/filters`],
    ['domain', async () => `/api/v1/domains/${(await createDomain(app, `f-${Math.random().toString(36).slice(2, 10)}.com`)).id}/filters`],
  ];

  for (const [owner, make] of owners) {
    describe(`${owner} filters`, () => {
      test('GET default is off with no rules; ETag and 304', async () => {
        const url = await make();
        const res = await app.api('GET', url);
        assert.equal(res.status, 200);
        assert.deepEqual(res.body.data, { mode: 'off', rules: [] });
        const cached = await app.api('GET', url, { headers: { 'if-none-match': String(res.headers.etag) } });
        assert.equal(cached.status, 304);
        assert.equal(cached.headers.etag, res.headers.etag);
      });

      test('PUT normalises: lowercase, *@domain -> domain, duplicates merged, sorted by pattern', async () => {
        const url = await make();
        const rules = [
          { type: 'allow', pattern: '*@Example.com' },
          { type: 'allow', pattern: 'Bob@Partner.COM', note: 'the boss' },
          { type: 'allow', pattern: 'example.com' },
          { type: 'allow', pattern: 'alpha.org' },
        ];
        const res = await app.api('PUT', url, { body: { mode: 'allowlist', rules } });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.body.data.mode, 'allowlist');
        assert.deepEqual(res.body.data.rules.map((r: any) => r.pattern), ['alpha.org', 'bob@partner.com', 'example.com']);
        assert.equal(res.body.data.rules.find((r: any) => r.pattern === 'bob@partner.com').note, 'the boss');
        const get = await app.api('GET', url);
        assert.deepEqual(get.body.data, res.body.data);
        assert.equal(get.headers.etag, res.headers.etag);
        const none = await app.api('PUT', url, { body: { mode: 'denylist', rules: [] } });
        assert.deepEqual(none.body.data, { mode: 'off', rules: [] });
      });

      test('rule types must agree with the mode: 422', async () => {
        const url = await make();
        const res = await app.api('PUT', url, { body: { mode: 'allowlist', rules: [{ type: 'allow', pattern: 'a.com' }, { type: 'deny', pattern: 'b.com' }] } });
        assertError(res, 422, 'validation_error');
        assert.equal(res.body.error.errors[0].field, 'rules.1.type');
        assertError(await app.api('PUT', url, { body: { mode: 'denylist', rules: [{ type: 'allow', pattern: 'a.com' }] } }), 422, 'validation_error');
        assertError(await app.api('PUT', url, { body: { mode: 'off', rules: [{ type: 'allow', pattern: 'a.com' }, { type: 'deny', pattern: 'b.com' }] } }), 422, 'validation_error');
        assert.deepEqual((await app.api('GET', url)).body.data, { mode: 'off', rules: [] });
      });

      test('bad patterns: 422 naming each rule', async () => {
        const url = await make();
        const bad = ['not a pattern', 'user@', '@example.com', '*@', 'http://x.com', '*.example.com', 'nodot'];
        const res = await app.api('PUT', url, { body: { mode: 'denylist', rules: [{ type: 'deny', pattern: 'fine.com' }, ...bad.map((pattern) => ({ type: 'deny', pattern }))] } });
        assertError(res, 422, 'validation_error');
        assert.deepEqual(res.body.error.errors.map((e: any) => e.field), bad.map((_, i) => `rules.${i + 1}.pattern`));
      });

      test('syntactic errors: 400', async () => {
        const url = await make();
        assertError(await app.api('PUT', url, { body: { mode: 'allowlist' } }), 400, 'invalid_parameter');
        assertError(await app.api('PUT', url, { body: { mode: 'maybe', rules: [] } }), 400, 'invalid_parameter');
        assertError(await app.api('PUT', url, { body: { mode: 'allowlist', rules: [{ type: 'allow', pattern: 'a.com', extra: 1 }] } }), 400, 'invalid_parameter');
        assertError(await app.api('PUT', url, { body: { mode: 'allowlist', rules: [{ type: 'allow', pattern: 'a.com', note: 'x'.repeat(256) }] } }), 400, 'invalid_parameter');
      });

      test('1000 rules are accepted, 1001 are 422', async () => {
        const url = await make();
        const rules = (n: number): unknown[] => Array.from({ length: n }, (_, i) => ({ type: 'deny', pattern: `s${String(i).padStart(4, '0')}@example.com` }));
        const over = await app.api('PUT', url, { body: { mode: 'denylist', rules: rules(1001) } });
        assertError(over, 422, 'validation_error');
        assert.equal(over.body.error.param, 'rules');
        const ok = await app.api('PUT', url, { body: { mode: 'denylist', rules: rules(1000) } });
        assert.equal(ok.status, 200, ok.text.slice(0, 500));
        assert.equal(ok.body.data.rules.length, 1000);
        assert.equal((await app.api('GET', url)).body.data.rules.length, 1000);
      });

      test('If-Match: stale 409 with the current ETag; current ETag accepted and chained', async () => {
        const url = await make();
        const first = await app.api('PUT', url, { body: { mode: 'denylist', rules: [{ type: 'deny', pattern: 'one.com' }] } });
        const stale = await app.api('PUT', url, { body: { mode: 'off', rules: [] }, headers: { 'if-match': 'W/"0123456789abcdef"' } });
        assertError(stale, 409, 'conflict');
        assert.equal(stale.headers.etag, first.headers.etag);
        const second = await app.api('PUT', url, { body: { mode: 'denylist', rules: [{ type: 'deny', pattern: 'two.com' }] }, headers: { 'if-match': String(first.headers.etag) } });
        assert.equal(second.status, 200);
        assert.notEqual(second.headers.etag, first.headers.etag);
        assertError(await app.api('PUT', url, { body: { mode: 'off', rules: [] }, headers: { 'if-match': String(first.headers.etag) } }), 409, 'conflict');
        assert.deepEqual((await app.api('GET', url)).body.data.rules.map((r: any) => r.pattern), ['two.com']);
      });
    });
  }

  test('unknown owners 404; a deleted mailbox 409', async () => {
    assertError(await app.api('GET', '/api/v1/mailboxes/mbx_doesnotexist00000000000000/filters'), 404, 'not_found');
    assertError(await app.api('PUT', '/api/v1/mailboxes/mbx_doesnotexist00000000000000/filters', { body: { mode: 'off', rules: [] } }), 404, 'not_found');
    assertError(await app.api('GET', '/api/v1/domains/mdom_doesnotexist0000000000000/filters'), 404, 'not_found');
    assertError(await app.api('PUT', '/api/v1/domains/mdom_doesnotexist0000000000000/filters', { body: { mode: 'off', rules: [] } }), 404, 'not_found');
    const { mailbox } = await createMailbox(app, `f-deleted@${DOMAIN}`);
    await app.api('DELETE', `/api/v1/mailboxes/${mailbox.id}`);
    assertError(await app.api('PUT', `/api/v1/mailboxes/${mailbox.id}/filters`, { body: { mode: 'off', rules: [] } }), 409, 'conflict');
  });

  test('domain filters: send_only domain 409; domain being deleted 409', async () => {
    const sendOnly = await createDomain(app, 'f-send-only.com', 'send_only');
    assertError(await app.api('GET', `/api/v1/domains/${sendOnly.id}/filters`), 409, 'conflict');
    assertError(await app.api('PUT', `/api/v1/domains/${sendOnly.id}/filters`, { body: { mode: 'off', rules: [] } }), 409, 'conflict');
    const deleting = await createDomain(app, 'f-deleting.com');
    await app.services.store.domains.update(deleting.id, { deleting: 1 });
    assertError(await app.api('PUT', `/api/v1/domains/${deleting.id}/filters`, { body: { mode: 'off', rules: [] } }), 409, 'conflict');
  });

  test('effectiveFilter: a mailbox filter that is on replaces its domain filter', async () => {
    const domain = await verifiedDomain(app, dns, 'f-effective.com');
    const { mailbox } = await createMailbox(app, 'agent@f-effective.com');
    const filters = app.services.filters;
    await app.api('PUT', `/api/v1/domains/${domain.id}/filters`, { body: { mode: 'denylist', rules: [{ type: 'deny', pattern: 'friend.com' }, { type: 'deny', pattern: 'spam.com' }] } });
    let effective = await filters.effectiveFilter(mailbox.id, domain.id);
    assert.equal(effective.mode, 'denylist');
    assert.equal(senderAllowed(effective, 'a@spam.com'), false);
    assert.equal(senderAllowed(effective, 'a@friend.com'), false);
    await app.api('PUT', `/api/v1/mailboxes/${mailbox.id}/filters`, { body: { mode: 'allowlist', rules: [{ type: 'allow', pattern: 'friend.com' }] } });
    effective = await filters.effectiveFilter(mailbox.id, domain.id);
    assert.deepEqual(effective, { mode: 'allowlist', rules: [{ type: 'allow', pattern: 'friend.com', note: null }] });
    assert.equal(senderAllowed(effective, 'a@friend.com'), true);
    assert.equal(senderAllowed(effective, 'a@stranger.com'), false);
    await app.api('PUT', `/api/v1/mailboxes/${mailbox.id}/filters`, { body: { mode: 'off', rules: [] } });
    effective = await filters.effectiveFilter(mailbox.id, domain.id);
    assert.equal(effective.mode, 'denylist');
    assert.equal(senderAllowed(effective, 'a@stranger.com'), true);
  });
});
