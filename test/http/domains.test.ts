// Domains (spec tag Domains): list, create, get, upgrade, delete, zone file, and verification
// against a real DNS server on loopback.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { describeEachBackend } from '../helpers/backends.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { assertError, createDomain, createMailbox, DnsFixture, secondTeam, verifiedDomain } from '../helpers/management.ts';

const D = '/api/v1/domains';

describeEachBackend('domains', (backend) => {
  let app: TestApp;
  const dns = new DnsFixture();
  before(async () => {
    const address = await dns.start();
    app = await startTestApp(backend, { MAILMUX_DNS_SERVERS: address });
  });
  after(async () => {
    await dns.stop();
    await app?.close();
  });

  describe('create', () => {
    test('send_receive by default, 201 with Location, ETag and every DNS record', async () => {
      const res = await app.api('POST', D, { body: { domain: 'default-mode.com' } });
      assert.equal(res.status, 201, res.text);
      const d = res.body.data;
      assert.match(d.id, /^mdom_[a-z0-9]{24}$/);
      assert.equal(res.headers.location, `${D}/${d.id}`);
      assert.match(String(res.headers.etag), /^W\/"[0-9a-f]{16}"$/);
      assert.equal(d.mode, 'send_receive');
      assert.equal(d.verification_status, 'pending');
      assert.equal(d.verified_at, null);
      assert.equal(d.mailbox_count, 0);
      assert.equal(d.ses_verified_for_sending, false);
      const r = d.dns_records;
      assert.equal(r.verification.name, '_mailmux.default-mode.com');
      assert.equal(r.dmarc.name, '_dmarc.default-mode.com');
      assert.match(r.dmarc.value, /p=quarantine/);
      assert.match(r.spf.value, /^v=spf1 .*mx\.mailmux\.test/);
      assert.equal(r.dkim.length, 1);
      assert.match(r.dkim[0].value, /^v=DKIM1; k=rsa; p=/);
      assert.deepEqual(r.mx, [{ priority: 10, target: 'mx.mailmux.test' }]);
      assert.equal(r.mail_from.mx.name, 'bounce.default-mode.com');
      const get = await app.api('GET', `${D}/${d.id}`);
      assert.equal(get.headers.etag, res.headers.etag);
    });

    test('send_only has no MX records', async () => {
      const d = await createDomain(app, 'send-only.com', 'send_only');
      assert.equal(d.mode, 'send_only');
      assert.deepEqual(d.dns_records.mx, []);
    });

    for (const bad of ['Upper.com', 'https://acme.com', 'nodot', 'acme.com/path', '-lead.com']) {
      test(`invalid domain ${bad}: 400 with errors[]`, async () => {
        const res = await app.api('POST', D, { body: { domain: bad } });
        assertError(res, 400, 'invalid_parameter');
        assert.equal(res.body.error.errors[0].field, 'domain');
        assert.equal(res.body.error.param, 'domain');
      });
    }

    test('unknown field and bad mode: 400', async () => {
      const res = await app.api('POST', D, { body: { domain: 'extra.com', verified: true } });
      assertError(res, 400, 'invalid_parameter');
      assert.deepEqual(res.body.error.errors.map((e: any) => [e.field, e.code]), [['verified', 'unrecognized_keys']]);
      assertError(await app.api('POST', D, { body: { domain: 'extra.com', mode: 'receive_only' } }), 400, 'invalid_parameter');
      assertError(await app.api('POST', D, { body: {} }), 400, 'invalid_parameter');
    });

    test('duplicate (any team) and the default domain: 409 conflict', async () => {
      await createDomain(app, 'dup.com');
      assertError(await app.api('POST', D, { body: { domain: 'dup.com' } }), 409, 'conflict');
      const other = await secondTeam(app);
      assertError(await app.api('POST', D, { token: other.rootKey, body: { domain: 'dup.com', mode: 'send_only' } }), 409, 'conflict');
      assertError(await app.api('POST', D, { body: { domain: 'agents.mailmux.test' } }), 409, 'conflict');
    });
  });

  test('list: created_at desc, cursor pagination, team-scoped', async () => {
    const other = await secondTeam(app);
    const mine = [];
    for (const name of ['page-a.com', 'page-b.com', 'page-c.com']) mine.push((await createDomain(app, name)).id);
    const theirs = await app.api('POST', D, { token: other.rootKey, body: { domain: 'theirs.com' } });
    const all = await app.api('GET', `${D}?limit=100`);
    assert.equal(all.status, 200);
    assert.ok(!all.body.data.some((d: any) => d.id === theirs.body.data.id));
    const times = all.body.data.map((d: any) => d.created_at);
    assert.deepEqual(times, [...times].sort().reverse());
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 100; i += 1) {
      const page = await app.api('GET', `${D}?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      assert.ok(page.body.data.length <= 2);
      seen.push(...page.body.data.map((d: any) => d.id));
      if (!page.body.pagination.has_more) {
        assert.equal(page.body.pagination.next_cursor, undefined);
        break;
      }
      cursor = page.body.pagination.next_cursor;
    }
    assert.deepEqual(seen, all.body.data.map((d: any) => d.id));
    for (const id of mine) assert.ok(seen.includes(id));
    const theirList = await app.api('GET', D, { token: other.rootKey });
    assert.deepEqual(theirList.body.data.map((d: any) => d.domain), ['theirs.com']);
  });

  test('get: 404 for unknown and for another team\'s domain; If-None-Match 304', async () => {
    const d = await createDomain(app, 'get-me.com');
    assertError(await app.api('GET', `${D}/mdom_doesnotexist0000000000000`), 404, 'not_found');
    const other = await secondTeam(app);
    assertError(await app.api('GET', `${D}/${d.id}`, { token: other.rootKey }), 404, 'not_found');
    assertError(await app.api('DELETE', `${D}/${d.id}`, { token: other.rootKey }), 404, 'not_found');
    assertError(await app.api('POST', `${D}/${d.id}/verify`, { token: other.rootKey }), 404, 'not_found');
    const first = await app.api('GET', `${D}/${d.id}`);
    const etag = String(first.headers.etag);
    const cached = await app.api('GET', `${D}/${d.id}`, { headers: { 'if-none-match': etag } });
    assert.equal(cached.status, 304);
    assert.equal(cached.text, '');
    assert.equal(cached.headers.etag, etag);
    const stale = await app.api('GET', `${D}/${d.id}`, { headers: { 'if-none-match': 'W/"0000000000000000"' } });
    assert.equal(stale.status, 200);
  });

  describe('upgrade (PATCH)', () => {
    test('send_only -> send_receive returns to pending and adds MX', async () => {
      const d = await verifiedDomain(app, dns, 'upgrade.com', 'send_only');
      const before = await app.api('GET', `${D}/${d.id}`);
      assert.equal(before.body.data.verification_status, 'verified');
      const res = await app.api('PATCH', `${D}/${d.id}`, { body: { mode: 'send_receive' }, headers: { 'if-match': String(before.headers.etag) } });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.data.mode, 'send_receive');
      assert.equal(res.body.data.verification_status, 'pending');
      assert.deepEqual(res.body.data.dns_records.mx, [{ priority: 10, target: 'mx.mailmux.test' }]);
      assert.notEqual(res.headers.etag, before.headers.etag);
      // MX is now required: verification passes only once it is published.
      const pending = await app.api('POST', `${D}/${d.id}/verify`);
      assert.equal(pending.body.data.status, 'pending');
      assert.equal(pending.body.data.checks.mx, false);
      dns.publish(res.body.data);
      const ok = await app.api('POST', `${D}/${d.id}/verify`);
      assert.equal(ok.body.data.status, 'verified');
    });

    test('downgrade 422; stale If-Match 409 with the current ETag', async () => {
      const d = await createDomain(app, 'nodowngrade.com');
      const res = await app.api('PATCH', `${D}/${d.id}`, { body: { mode: 'send_only' } });
      assertError(res, 422, 'validation_error');
      assert.equal(res.body.error.errors[0].field, 'mode');
      const current = await app.api('GET', `${D}/${d.id}`);
      const stale = await app.api('PATCH', `${D}/${d.id}`, { body: { mode: 'send_receive' }, headers: { 'if-match': 'W/"0123456789abcdef"' } });
      assertError(stale, 409, 'conflict');
      assert.equal(stale.headers.etag, current.headers.etag);
      assertError(await app.api('PATCH', `${D}/mdom_doesnotexist0000000000000`, { body: { mode: 'send_receive' } }), 404, 'not_found');
    });
  });

  describe('delete', () => {
    test('200 {deleted, id}; then 404', async () => {
      const d = await createDomain(app, 'delete-me.com');
      const res = await app.api('DELETE', `${D}/${d.id}`);
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.data, { deleted: true, id: d.id });
      assertError(await app.api('GET', `${D}/${d.id}`), 404, 'not_found');
      assertError(await app.api('DELETE', `${D}/${d.id}`), 404, 'not_found');
    });

    test('409 while a mailbox (active or suspended) uses it; allowed once the mailbox is deleted', async () => {
      const d = await verifiedDomain(app, dns, 'in-use.com');
      const { mailbox } = await createMailbox(app, 'bot@in-use.com');
      assert.equal((await app.api('GET', `${D}/${d.id}`)).body.data.mailbox_count, 1);
      assertError(await app.api('DELETE', `${D}/${d.id}`), 409, 'conflict');
      await app.api('POST', `/api/v1/mailboxes/${mailbox.id}/suspend`);
      assertError(await app.api('DELETE', `${D}/${d.id}`), 409, 'conflict');
      assert.equal((await app.api('DELETE', `/api/v1/mailboxes/${mailbox.id}`)).status, 200);
      const res = await app.api('DELETE', `${D}/${d.id}`);
      assert.equal(res.status, 200, res.text);
    });
  });

  test('zone file: text/plain attachment with every record', async () => {
    const d = await createDomain(app, 'zone.com');
    const res = await app.api('GET', `${D}/${d.id}/zone-file`);
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.equal(res.headers['content-disposition'], 'attachment; filename="zone.com.zone"');
    assert.equal(res.headers['cache-control'], 'no-store');
    const records = res.text
      .split('\n')
      .filter((l) => l && !l.startsWith(';'))
      .map((l) => {
        const [name, ttl, cls, type, ...rest] = l.split('\t');
        assert.equal(ttl, '3600');
        assert.equal(cls, 'IN');
        const value = rest.join('\t');
        return { name, type, value: type === 'TXT' ? [...value.matchAll(/"([^"]*)"/g)].map((m) => m[1]).join('') : value };
      });
    const r = d.dns_records;
    const expected = [
      { name: `${r.verification.name}.`, type: 'TXT', value: r.verification.value },
      { name: `${r.spf.name}.`, type: 'TXT', value: r.spf.value },
      { name: `${r.dmarc.name}.`, type: 'TXT', value: r.dmarc.value },
      ...r.dkim.map((k: any) => ({ name: `${k.name}.`, type: 'TXT', value: k.value })),
      ...r.mx.map((m: any) => ({ name: 'zone.com.', type: 'MX', value: `${m.priority} ${m.target}.` })),
      { name: `${r.mail_from.mx.name}.`, type: 'MX', value: `${r.mail_from.mx.priority} ${r.mail_from.mx.target}.` },
      { name: `${r.mail_from.spf.name}.`, type: 'TXT', value: r.mail_from.spf.value },
    ];
    assert.deepEqual(records, expected);
    assertError(await app.api('GET', `${D}/mdom_doesnotexist0000000000000/zone-file`), 404, 'not_found');
  });

  describe('verify against DNS', () => {
    test('every record published: verified, every check true, DKIM success', async () => {
      const d = await createDomain(app, 'all-good.com');
      dns.publish(d);
      const res = await app.api('POST', `${D}/${d.id}/verify`);
      assert.equal(res.status, 200, res.text);
      const v = res.body.data;
      assert.equal(v.status, 'verified');
      assert.deepEqual(v.checks, { verification_txt: true, spf: true, dmarc: true, mx: true, mail_from_mx: true, mail_from_spf: true });
      assert.equal(v.ses_dkim_status, 'success');
      assert.equal(v.ses_mail_from_status, 'success');
      assert.equal(v.ses_verified_for_sending, true);
      const got = (await app.api('GET', `${D}/${d.id}`)).body.data;
      assert.equal(got.verification_status, 'verified');
      assert.notEqual(got.verified_at, null);
      assert.equal(got.ses_dkim_status, 'success');
    });

    test('nothing published: stays pending with checks false', async () => {
      const d = await createDomain(app, 'nothing.com');
      const v = (await app.api('POST', `${D}/${d.id}/verify`)).body.data;
      assert.equal(v.status, 'pending');
      assert.deepEqual(v.checks, { verification_txt: false, spf: false, dmarc: false, mx: false, mail_from_mx: false, mail_from_spf: false });
      assert.equal(v.ses_dkim_status, 'failed');
      assert.equal(v.ses_verified_for_sending, false);
      assert.equal((await app.api('GET', `${D}/${d.id}`)).body.data.verification_status, 'pending');
    });

    test('some records missing: only those checks false; send_only needs no MX', async () => {
      const d = await createDomain(app, 'partial.com', 'send_only');
      dns.publish(d);
      dns.server.zone.txt.delete(d.dns_records.dmarc.name);
      const v = (await app.api('POST', `${D}/${d.id}/verify`)).body.data;
      assert.equal(v.status, 'pending');
      assert.deepEqual(v.checks, { verification_txt: true, spf: true, dmarc: false, mx: true, mail_from_mx: true, mail_from_spf: true });
    });

    test('wrong DKIM key: ses_dkim_status failed, not verified', async () => {
      const d = await createDomain(app, 'wrong-dkim.com');
      dns.publish(d);
      dns.server.zone.txt.set(d.dns_records.dkim[0].name, ['v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwrong']);
      const v = (await app.api('POST', `${D}/${d.id}/verify`)).body.data;
      assert.equal(v.ses_dkim_status, 'failed');
      assert.equal(v.status, 'pending');
      assert.equal(v.checks.verification_txt, true);
    });

    test('SERVFAIL: temporary_failure and the status is left as it was', async () => {
      const d = await verifiedDomain(app, dns, 'flaky.com');
      dns.server.zone.servfail.add(d.dns_records.dkim[0].name);
      const v = (await app.api('POST', `${D}/${d.id}/verify`)).body.data;
      assert.equal(v.ses_dkim_status, 'temporary_failure');
      assert.equal(v.status, 'verified');
      assert.equal((await app.api('GET', `${D}/${d.id}`)).body.data.verification_status, 'verified');
      const p = await createDomain(app, 'flaky-pending.com');
      dns.server.zone.servfail.add('_mailmux.flaky-pending.com');
      const pv = (await app.api('POST', `${D}/${p.id}/verify`)).body.data;
      assert.equal(pv.status, 'pending');
      assert.equal(pv.ses_identity_verification_status, 'TemporaryFailure');
    });

    test('a verified domain whose records disappear fails, and recovers on a full check', async () => {
      const d = await verifiedDomain(app, dns, 'vanish.com');
      dns.withdraw('vanish.com');
      const v = (await app.api('POST', `${D}/${d.id}/verify`)).body.data;
      assert.equal(v.status, 'failed');
      assert.equal(v.ses_verified_for_sending, false);
      assert.equal((await app.api('GET', `${D}/${d.id}`)).body.data.verification_status, 'failed');
      dns.publish(d);
      dns.server.zone.txt.delete(d.dns_records.spf.name);
      assert.equal((await app.api('POST', `${D}/${d.id}/verify`)).body.data.status, 'failed');
      dns.withdraw('vanish.com');
      dns.publish(d);
      assert.equal((await app.api('POST', `${D}/${d.id}/verify`)).body.data.status, 'verified');
    });

    test('a scheduled check fails a verified domain only on the second failure in a row', async () => {
      const d = await verifiedDomain(app, dns, 'scheduled.com');
      dns.withdraw('scheduled.com');
      const row = async (): Promise<any> => app.services.store.domains.get(d.id);
      await app.services.domains.verifyRow(await row(), { scheduled: true });
      assert.equal((await row()).verification_status, 'verified');
      await app.services.domains.verifyRow(await row(), { scheduled: true });
      assert.equal((await row()).verification_status, 'failed');
    });

    test('SPF combined with other includes and DMARC p=reject are accepted; p=none is not', async () => {
      const d = await createDomain(app, 'combined.com');
      dns.publish(d);
      dns.server.zone.txt.set('combined.com', ['google-site-verification=abc', 'v=spf1 include:_spf.google.com a:mx.mailmux.test ~all']);
      dns.server.zone.txt.set(d.dns_records.dmarc.name, ['v=DMARC1; p=reject; rua=mailto:d@combined.com']);
      assert.equal((await app.api('POST', `${D}/${d.id}/verify`)).body.data.status, 'verified');
      dns.server.zone.txt.set(d.dns_records.dmarc.name, ['v=DMARC1; p=none']);
      const v = (await app.api('POST', `${D}/${d.id}/verify`)).body.data;
      assert.equal(v.checks.dmarc, false);
      assert.equal(v.checks.spf, true);
      assert.equal(v.status, 'failed');
    });

    test('mailboxes can be created on the domain only once it is verified', async () => {
      const d = await createDomain(app, 'later.com');
      const before = await app.api('POST', '/api/v1/mailboxes', { body: { email: 'agent@later.com' } });
      assertError(before, 422, 'validation_error');
      assert.equal(before.body.error.param, 'email');
      dns.publish(d);
      assert.equal((await app.api('POST', `${D}/${d.id}/verify`)).body.data.status, 'verified');
      const { mailbox } = await createMailbox(app, 'agent@later.com');
      assert.equal(mailbox.email, 'agent@later.com');
    });

    test('a send_only domain takes no mailboxes even when verified', async () => {
      await verifiedDomain(app, dns, 'outbound-only.com', 'send_only');
      assertError(await app.api('POST', '/api/v1/mailboxes', { body: { email: 'agent@outbound-only.com' } }), 422, 'validation_error');
    });
  });
});

describeEachBackend('domains team limit', (backend) => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp(backend, { MAILMUX_MAX_DOMAINS_PER_TEAM: '2' });
  });
  after(async () => app.close());

  test('409 limit_exceeded beyond MAILMUX_MAX_DOMAINS_PER_TEAM; freed by a delete', async () => {
    const a = await createDomain(app, 'one.com');
    await createDomain(app, 'two.com');
    assertError(await app.api('POST', D, { body: { domain: 'three.com' } }), 409, 'limit_exceeded');
    assert.equal((await app.api('GET', D)).body.data.length, 2);
    const other = await secondTeam(app);
    assert.equal((await app.api('POST', D, { token: other.rootKey, body: { domain: 'three.com' } })).status, 201);
    await app.api('DELETE', `${D}/${a.id}`);
    assert.equal((await app.api('POST', D, { body: { domain: 'four.com' } })).status, 201);
  });
});
