// Mailboxes and mailbox keys (spec tag Mailboxes): create with the first credential, list, get,
// patch, suspend/resume, delete with cleanup, availability, and extra keys.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { describeEachBackend } from '../helpers/backends.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { assertError, createDomain, createMailbox, rawApi, secondTeam } from '../helpers/management.ts';

const M = '/api/v1/mailboxes';
const DOMAIN = 'agents.mailmux.test';
const GB = 1073741824;

describeEachBackend('mailboxes', (backend) => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp(backend);
  });
  after(async () => app.close());

  const authenticates = async (secret: string): Promise<boolean> => (await app.services.credentials.authenticate(secret)) !== null;

  describe('create', () => {
    test('on the default domain: 201, Location, credential shown once and working', async () => {
      const res = await app.api('POST', M, { body: { email: 'First.Bot@Agents.Mailmux.Test', display_name: 'First Bot', quota_bytes: 5 * GB } });
      assert.equal(res.status, 201, res.text);
      const { mailbox, credential, warning } = res.body.data;
      assert.match(mailbox.id, /^mbx_[a-z0-9]{24}$/);
      assert.equal(res.headers.location, `${M}/${mailbox.id}`);
      assert.deepEqual(
        { email: mailbox.email, display_name: mailbox.display_name, quota_bytes: mailbox.quota_bytes, send_scope: mailbox.send_scope, status: mailbox.status },
        { email: `first.bot@${DOMAIN}`, display_name: 'First Bot', quota_bytes: 5 * GB, send_scope: { type: 'all' }, status: 'active' },
      );
      assert.equal(warning, null);
      assert.match(credential.public_id, /^smx_[a-z0-9]{24}$/);
      assert.match(credential.secret, /^smx_mbx_[A-Za-z0-9]{40}$/);
      assert.ok(credential.secret.startsWith(credential.key_prefix));
      assert.ok(credential.secret.endsWith(credential.key_suffix));
      assert.equal(credential.username, mailbox.email);
      assert.equal(credential.server, 'mx.mailmux.test');
      assert.equal(credential.imap_port, app.config.imapsPort);
      assert.equal(credential.smtp_port, app.config.submissionPort);

      const principal = await app.services.credentials.authenticate(credential.secret);
      assert.deepEqual(principal, { kind: 'mailbox', keyId: credential.public_id, teamId: app.teamId, mailboxId: mailbox.id, email: mailbox.email });
      assert.ok(await app.services.credentials.authenticateLogin(mailbox.email.toUpperCase(), credential.secret));
      assert.equal(await app.services.credentials.authenticateLogin(`other@${DOMAIN}`, credential.secret), null);

      const get = await app.api('GET', `${M}/${mailbox.id}`);
      const list = await app.api('GET', M);
      for (const r of [get, list]) {
        assert.ok(!r.text.includes(credential.secret));
        assert.ok(!r.text.includes('"secret"'));
      }
      assert.deepEqual(get.body.data, mailbox);
    });

    test('quota defaults to 1 GB', async () => {
      const { mailbox } = await createMailbox(app, `defaults@${DOMAIN}`);
      assert.equal(mailbox.quota_bytes, GB);
      assert.equal(mailbox.display_name, null);
    });

    test('semantic errors: 422 validation_error naming the field', async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ email: `tier@${DOMAIN}`, quota_bytes: 2 * GB }, 'quota_bytes'],
        [{ email: `scope@${DOMAIN}`, send_scope: { type: 'providers', provider_public_ids: ['dprov_unknown'] } }, 'send_scope.provider_public_ids.0'],
        [{ email: `group@${DOMAIN}`, send_scope: { type: 'group', group_public_ids: ['dgrp_unknown'] } }, 'send_scope.group_public_ids.0'],
        [{ email: `mixed@${DOMAIN}`, send_scope: { type: 'all', provider_public_ids: ['dprov_x'] } }, 'send_scope.type'],
        [{ email: `postmaster@${DOMAIN}` }, 'email'],
        [{ email: 'not-an-email' }, 'email'],
        [{ email: `plus+tag@${DOMAIN}` }, 'email'],
        [{ email: 'bot@unknown-domain.com' }, 'email'],
      ];
      for (const [body, field] of cases) {
        const res = await app.api('POST', M, { body });
        assertError(res, 422, 'validation_error');
        assert.equal(res.body.error.param, field, JSON.stringify(body));
        assert.equal(res.body.error.errors[0].field, field);
      }
    });

    test('syntactic errors: 400 invalid_parameter', async () => {
      for (const body of [{ email: 'a@b' }, {}, { email: `x@${DOMAIN}`, extra: 1 }, { email: `x@${DOMAIN}`, quota_bytes: 'big' }, { email: `x@${DOMAIN}`, send_scope: { type: 'nope' } }]) {
        assertError(await app.api('POST', M, { body }), 400, 'invalid_parameter');
      }
    });

    test('taken (also by another team on the shared domain): 409 conflict', async () => {
      await createMailbox(app, `taken@${DOMAIN}`);
      assertError(await app.api('POST', M, { body: { email: `Taken@${DOMAIN}` } }), 409, 'conflict');
      const other = await secondTeam(app);
      assertError(await app.api('POST', M, { token: other.rootKey, body: { email: `taken@${DOMAIN}` } }), 409, 'conflict');
    });

    test('custom domain of another team or not verified: 422', async () => {
      await createDomain(app, 'unverified-mbx.com');
      assertError(await app.api('POST', M, { body: { email: 'a@unverified-mbx.com' } }), 422, 'validation_error');
    });
  });

  test('list: newest first, pagination, include_deleted', async () => {
    const ids: string[] = [];
    for (const n of ['list-1', 'list-2', 'list-3']) ids.push((await createMailbox(app, `${n}@${DOMAIN}`)).mailbox.id);
    await app.api('DELETE', `${M}/${ids[1]}`);
    const live = (await app.api('GET', `${M}?limit=100`)).body.data.map((m: any) => m.id);
    assert.ok(live.includes(ids[0]) && live.includes(ids[2]) && !live.includes(ids[1]));
    const withDeleted = await app.api('GET', `${M}?limit=100&include_deleted=true`);
    const deleted = withDeleted.body.data.find((m: any) => m.id === ids[1]);
    assert.equal(deleted.status, 'deleted');
    const all = withDeleted.body.data.map((m: any) => m.id);
    const seen: string[] = [];
    let cursor = '';
    for (;;) {
      const page = await app.api('GET', `${M}?limit=2&include_deleted=true${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...page.body.data.map((m: any) => m.id));
      if (!page.body.pagination.has_more) break;
      cursor = page.body.pagination.next_cursor;
    }
    assert.deepEqual(seen, all);
    const other = await secondTeam(app);
    assert.deepEqual((await app.api('GET', M, { token: other.rootKey })).body.data, []);
    assertError(await app.api('GET', `${M}/${ids[0]}`, { token: other.rootKey }), 404, 'not_found');
  });

  test('get: 404 unknown, If-None-Match 304', async () => {
    const { mailbox } = await createMailbox(app, `etag@${DOMAIN}`);
    assertError(await app.api('GET', `${M}/mbx_doesnotexist00000000000000`), 404, 'not_found');
    const first = await app.api('GET', `${M}/${mailbox.id}`);
    const cached = await app.api('GET', `${M}/${mailbox.id}`, { headers: { 'if-none-match': String(first.headers.etag) } });
    assert.equal(cached.status, 304);
    assert.equal(cached.headers.etag, first.headers.etag);
  });

  test('get after each change: the current view and ETag (renderings reused by exact content, never stale)', async () => {
    const { mailbox } = await createMailbox(app, `rerender@${DOMAIN}`);
    const changes: Record<string, unknown>[] = [{ display_name: '~' }, { display_name: null }, { display_name: '1:~' }, { quota_bytes: 50 * GB }, { send_scope: { type: 'all' } }, { display_name: '~' }, { display_name: null }];
    for (const body of changes) {
      const patched = await app.api('PATCH', `${M}/${mailbox.id}`, { body });
      assert.equal(patched.status, 200, patched.text);
      for (let i = 0; i < 2; i++) {
        const got = await app.api('GET', `${M}/${mailbox.id}`);
        assert.deepEqual(got.body.data, patched.body.data);
        assert.equal(got.headers.etag, patched.headers.etag);
      }
    }
    const suspended = await app.api('POST', `${M}/${mailbox.id}/suspend`);
    const got = await app.api('GET', `${M}/${mailbox.id}`);
    assert.equal(got.body.data.status, 'suspended');
    assert.equal(got.headers.etag, suspended.headers.etag);
  });

  describe('patch', () => {
    test('display_name (null clears), quota_bytes, send_scope; ETag chains', async () => {
      const { mailbox } = await createMailbox(app, `patch@${DOMAIN}`, { display_name: 'Before' });
      const etag0 = String((await app.api('GET', `${M}/${mailbox.id}`)).headers.etag);
      const r1 = await app.api('PATCH', `${M}/${mailbox.id}`, { body: { display_name: 'After', quota_bytes: 50 * GB }, headers: { 'if-match': etag0 } });
      assert.equal(r1.status, 200, r1.text);
      assert.equal(r1.body.data.display_name, 'After');
      assert.equal(r1.body.data.quota_bytes, 50 * GB);
      const r2 = await app.api('PATCH', `${M}/${mailbox.id}`, { body: { display_name: null, send_scope: { type: 'all' } }, headers: { 'if-match': String(r1.headers.etag) } });
      assert.equal(r2.status, 200, r2.text);
      assert.equal(r2.body.data.display_name, null);
      assert.deepEqual(r2.body.data, (await app.api('GET', `${M}/${mailbox.id}`)).body.data);
      // Without If-Match the write is unconditional.
      assert.equal((await app.api('PATCH', `${M}/${mailbox.id}`, { body: { display_name: 'Again' } })).status, 200);
    });

    test('stale If-Match 409 with the current ETag; bad tier, unknown provider, quota below usage 422', async () => {
      const { mailbox } = await createMailbox(app, `patch-err@${DOMAIN}`);
      const current = await app.api('GET', `${M}/${mailbox.id}`);
      const stale = await app.api('PATCH', `${M}/${mailbox.id}`, { body: { display_name: 'x' }, headers: { 'if-match': 'W/"0123456789abcdef"' } });
      assertError(stale, 409, 'conflict');
      assert.equal(stale.headers.etag, current.headers.etag);
      assertError(await app.api('PATCH', `${M}/${mailbox.id}`, { body: { quota_bytes: 123 } }), 422, 'validation_error');
      assertError(await app.api('PATCH', `${M}/${mailbox.id}`, { body: { send_scope: { type: 'providers', provider_public_ids: ['dprov_x'] } } }), 422, 'validation_error');
      await app.services.store.mailboxes.update(mailbox.id, { used_bytes: 2 * GB });
      assertError(await app.api('PATCH', `${M}/${mailbox.id}`, { body: { quota_bytes: GB } }), 422, 'validation_error');
      assertError(await app.api('PATCH', `${M}/${mailbox.id}`, { body: { email: 'new@x.com' } }), 400, 'invalid_parameter');
      assert.deepEqual((await app.api('GET', `${M}/${mailbox.id}`)).body.data, current.body.data);
    });
  });

  test('suspend/resume: idempotent; keys stop and start working; deleted 409', async () => {
    const { mailbox, credential } = await createMailbox(app, `suspend@${DOMAIN}`);
    for (let i = 0; i < 2; i += 1) {
      const res = await app.api('POST', `${M}/${mailbox.id}/suspend`);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.data.status, 'suspended');
    }
    assert.equal(await authenticates(credential.secret), false);
    for (let i = 0; i < 2; i += 1) {
      const res = await app.api('POST', `${M}/${mailbox.id}/resume`);
      assert.equal(res.status, 200);
      assert.equal(res.body.data.status, 'active');
    }
    assert.equal(await authenticates(credential.secret), true);
    assertError(await app.api('POST', `${M}/mbx_doesnotexist00000000000000/suspend`), 404, 'not_found');
    await app.api('DELETE', `${M}/${mailbox.id}`);
    assertError(await app.api('POST', `${M}/${mailbox.id}/suspend`), 409, 'conflict');
    assertError(await app.api('POST', `${M}/${mailbox.id}/resume`), 409, 'conflict');
  });

  test('delete: keys revoked, address cleanup_pending until cleanup, then reusable', async () => {
    const email = `recycle@${DOMAIN}`;
    const { mailbox, credential } = await createMailbox(app, email);
    const res = await app.api('DELETE', `${M}/${mailbox.id}`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.data, { deleted: true, id: mailbox.id });
    assert.equal(await authenticates(credential.secret), false);
    assert.equal((await app.api('GET', `${M}/${mailbox.id}`)).body.data.status, 'deleted');
    assert.equal((await app.api('DELETE', `${M}/${mailbox.id}`)).status, 200);
    const pending = await app.api('GET', `${M}/availability?email=${encodeURIComponent(email)}`);
    assert.deepEqual(pending.body.data, { available: false, email, reason: 'cleanup_pending' });
    assertError(await app.api('POST', M, { body: { email } }), 409, 'conflict');
    assertError(await app.api('PATCH', `${M}/${mailbox.id}`, { body: { display_name: 'x' } }), 409, 'conflict');
    assert.ok((await app.services.mailboxes.runCleanups()) >= 1);
    const free = await app.api('GET', `${M}/availability?email=${encodeURIComponent(email)}`);
    assert.deepEqual(free.body.data, { available: true, email, reason: 'available' });
    const again = await createMailbox(app, email);
    assert.notEqual(again.mailbox.id, mailbox.id);
    assert.equal(await authenticates(credential.secret), false);
    assertError(await app.api('DELETE', `${M}/mbx_doesnotexist00000000000000`), 404, 'not_found');
  });

  describe('keys', () => {
    test('create 201 + Location; revoke 200 and idempotent; revoked key stops working', async () => {
      const { mailbox, credential: first } = await createMailbox(app, `keys@${DOMAIN}`);
      const res = await app.api('POST', `${M}/${mailbox.id}/keys`, { body: { app_name: 'crm agent' } });
      assert.equal(res.status, 201, res.text);
      const key = res.body.data.credential;
      assert.equal(res.headers.location, `${M}/${mailbox.id}/keys/${key.public_id}`);
      assert.match(key.secret, /^smx_mbx_/);
      assert.notEqual(key.secret, first.secret);
      assert.equal(key.username, mailbox.email);
      assert.equal(await authenticates(key.secret), true);
      for (let i = 0; i < 2; i += 1) {
        const del = await app.api('DELETE', `${M}/${mailbox.id}/keys/${key.public_id}`);
        assert.equal(del.status, 200);
        assert.deepEqual(del.body.data, { deleted: true, id: key.public_id });
      }
      assert.equal(await authenticates(key.secret), false);
      assert.equal(await authenticates(first.secret), true);
    });

    test('app_name required 400; suspended mailbox 422; unknown key or mailbox 404', async () => {
      const { mailbox, credential } = await createMailbox(app, `keys-err@${DOMAIN}`);
      const missing = await app.api('POST', `${M}/${mailbox.id}/keys`, { body: {} });
      assertError(missing, 400, 'invalid_parameter');
      assert.equal(missing.body.error.errors[0].field, 'app_name');
      assertError(await app.api('POST', `${M}/${mailbox.id}/keys`, { body: { app_name: '' } }), 400, 'invalid_parameter');
      assertError(await app.api('POST', `${M}/mbx_doesnotexist00000000000000/keys`, { body: { app_name: 'x' } }), 404, 'not_found');
      await app.api('POST', `${M}/${mailbox.id}/suspend`);
      assertError(await app.api('POST', `${M}/${mailbox.id}/keys`, { body: { app_name: 'x' } }), 422, 'validation_error');
      assertError(await app.api('DELETE', `${M}/${mailbox.id}/keys/smx_doesnotexist00000000000000`), 404, 'not_found');
      const other = await createMailbox(app, `keys-other@${DOMAIN}`);
      // A key of another mailbox is not found under this one and keeps working.
      assertError(await app.api('DELETE', `${M}/${mailbox.id}/keys/${other.credential.public_id}`), 404, 'not_found');
      assert.equal(await authenticates(other.credential.secret), true);
      const team = await secondTeam(app);
      assertError(await app.api('DELETE', `${M}/${mailbox.id}/keys/${credential.public_id}`, { token: team.rootKey }), 404, 'not_found');
    });
  });

  test('availability: every reason code, normalised email', async () => {
    const other = await secondTeam(app);
    await app.api('POST', '/api/v1/domains', { token: other.rootKey, body: { domain: 'theirs-avail.com' } });
    const check = async (email: string): Promise<any> => {
      const res = await app.api('GET', `${M}/availability?email=${encodeURIComponent(email)}`);
      assert.equal(res.status, 200, res.text);
      return res.body.data;
    };
    await createMailbox(app, `avail-taken@${DOMAIN}`);
    const gone = await createMailbox(app, `avail-gone@${DOMAIN}`);
    await app.api('DELETE', `${M}/${gone.mailbox.id}`);
    assert.deepEqual(await check(` Free.Name@${DOMAIN.toUpperCase()} `), { available: true, email: `free.name@${DOMAIN}`, reason: 'available' });
    for (const bad of ['nope', 'a@b@c', `plus+tag@${DOMAIN}`, `sp ace@${DOMAIN}`]) assert.equal((await check(bad)).reason, 'invalid_email', bad);
    for (const d of ['nowhere.com', 'theirs-avail.com']) assert.equal((await check(`bot@${d}`)).reason, 'domain_not_available', d);
    assert.equal((await check(`avail-taken@${DOMAIN}`)).reason, 'taken');
    assert.equal((await check(`postmaster@${DOMAIN}`)).reason, 'reserved');
    assert.equal((await check(`avail-gone@${DOMAIN}`)).reason, 'cleanup_pending');
    assert.equal((await check(`avail-gone@${DOMAIN}`)).available, false);
    // The spec lists no 400 for availability; a missing email is still the spec's missing_parameter.
    assertError(await rawApi(app, 'GET', `${M}/availability`), 400, 'missing_parameter');
  });
});

describeEachBackend('mailbox team limits', (backend) => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp(backend, { MAILMUX_MAX_MAILBOXES_PER_TEAM: '2', MAILMUX_MAX_KEYS_PER_TEAM: '3' });
  });
  after(async () => app.close());

  test('mailbox limit 409 limit_exceeded; deleted mailboxes do not count', async () => {
    const a = await createMailbox(app, `lim-a@${DOMAIN}`);
    await createMailbox(app, `lim-b@${DOMAIN}`);
    assertError(await app.api('POST', M, { body: { email: `lim-c@${DOMAIN}` } }), 409, 'limit_exceeded');
    await app.api('DELETE', `${M}/${a.mailbox.id}`);
    await createMailbox(app, `lim-c@${DOMAIN}`);
  });

  test('key limit: keys 409 limit_exceeded; a mailbox whose key fails leaves no mailbox and no key', async () => {
    const live = (await app.api('GET', M)).body.data;
    assert.equal(live.length, 2);
    const keysBefore = await app.services.store.keys.countActiveMailboxKeys(app.teamId);
    assert.equal(keysBefore, 2);
    const extra = await app.api('POST', `${M}/${live[0].id}/keys`, { body: { app_name: 'third' } });
    assert.equal(extra.status, 201, extra.text);
    assertError(await app.api('POST', `${M}/${live[0].id}/keys`, { body: { app_name: 'fourth' } }), 409, 'limit_exceeded');
    // Make room for a mailbox but not for its key: the create fails as a whole.
    await app.api('DELETE', `${M}/${live[1].id}`);
    await app.api('POST', `${M}/${live[0].id}/keys`, { body: { app_name: 'fills the freed slot' } });
    const email = `atomic@${DOMAIN}`;
    assertError(await app.api('POST', M, { body: { email } }), 409, 'limit_exceeded');
    assert.equal((await app.api('GET', `${M}?include_deleted=true&limit=100`)).body.data.filter((m: any) => m.email === email).length, 0);
    assert.equal(await app.services.store.mailboxes.liveByEmail(email), undefined);
    assert.equal(await app.services.store.keys.countActiveMailboxKeys(app.teamId), 3);
    assert.equal((await app.api('GET', `${M}/availability?email=${email}`)).body.data.reason, 'available');
    // Revoking a key frees its slot.
    await app.api('DELETE', `${M}/${live[0].id}/keys/${extra.body.data.credential.public_id}`);
    await createMailbox(app, email);
  });
});
