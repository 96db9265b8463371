// The maintenance worker, one pass at a time on a clock the test moves: it purges deleted
// mailboxes (freeing their addresses), drops expired idempotency records, and re-verifies custom
// domains on schedule against a real DNS server on loopback.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { iso } from '../../src/core/clock.ts';
import { IDEMPOTENCY_TTL_MS } from '../../src/config/limits.ts';
import { MaintenanceWorker } from '../../src/workers/maintenance.ts';
import { describeEachBackend } from '../helpers/backends.ts';
import { MutableClock, startTestApp, type TestApp } from '../helpers/app.ts';
import { LoopbackDns, type Zone } from '../helpers/dns-server.ts';

const HOUR = 3600_000;

/** Publishes a domain's dns_records (as POST /domains returns them) in the loopback zone. */
function publish(zone: Zone, domain: string, records: any): void {
  const txt = (name: string, value: string): void => {
    zone.txt.set(name, [...(zone.txt.get(name) ?? []), value]);
  };
  txt(records.verification.name, records.verification.value);
  txt(records.spf.name, records.spf.value);
  txt(records.dmarc.name, records.dmarc.value);
  for (const d of records.dkim) txt(d.name, d.value);
  zone.mx.set(domain, records.mx.map((m: any) => ({ exchange: m.target, priority: m.priority })));
  zone.mx.set(records.mail_from.mx.name, [{ exchange: records.mail_from.mx.target, priority: records.mail_from.mx.priority }]);
  txt(records.mail_from.spf.name, records.mail_from.spf.value);
}

describeEachBackend('maintenance worker', (backend) => {
  let app: TestApp;
  let dns: LoopbackDns;
  let clock: MutableClock;
  before(async () => {
    dns = new LoopbackDns();
    const server = await dns.start();
    clock = new MutableClock(Date.now());
    app = await startTestApp(backend, { MAILMUX_DNS_SERVERS: server }, { clock });
  });
  after(async () => {
    await app.close();
    await dns.stop();
  });

  test('a pass purges deleted mailboxes pending cleanup, which frees their addresses', async () => {
    const email = 'cleanup@agents.mailmux.test';
    const created = await app.api('POST', '/api/v1/mailboxes', { body: { email } });
    assert.equal(created.status, 201, created.text);
    const id = created.body.data.mailbox.id as string;
    const other = await app.api('POST', '/api/v1/mailboxes', { body: { email: 'stays@agents.mailmux.test' } });
    assert.equal(other.status, 201, other.text);

    // Something queued to send and an upload: both go with the mailbox.
    const key = created.body.data.credential.secret as string;
    const queued = await app.api('POST', '/api/v1/mailbox/messages/send', { token: key, body: { to: [{ email: 'far@example.org' }], subject: 'queued', text_body: 'x' } });
    assert.equal(queued.status, 200, queued.text);
    const upload = await app.api('POST', '/api/v1/mailbox/attachments:upload?filename=a.txt', { token: key, rawBody: 'upload bytes', headers: { 'content-type': 'text/plain' } });
    assert.equal(upload.status, 200, upload.text);
    const [submission] = await app.services.store.submissions.list(id, { now: new Date().toISOString(), sortBy: 'send_at', direction: 'desc', limit: 10, cursor: null });

    assert.equal((await app.api('DELETE', `/api/v1/mailboxes/${id}`)).status, 200);
    assert.equal((await app.services.store.mailboxes.get(id))?.cleanup_pending, 1);
    const pending = await app.api('GET', `/api/v1/mailboxes/availability?email=${encodeURIComponent(email)}`);
    assert.equal(pending.body.data.reason, 'cleanup_pending');
    assert.equal((await app.api('POST', '/api/v1/mailboxes', { body: { email } })).status, 409);

    await new MaintenanceWorker(app.services).pass();

    const row = await app.services.store.mailboxes.get(id);
    assert.equal(row?.status, 'deleted', 'the row stays for audit');
    assert.equal(row?.cleanup_pending, 0);
    assert.deepEqual(await app.services.store.mailboxes.listPendingCleanup(), []);
    assert.ok(submission);
    assert.equal(await app.services.store.submissions.get(submission.id), undefined);
    assert.deepEqual(await app.services.store.outbound.forSubmission(submission.id), []);
    assert.equal(await app.services.store.uploads.get(upload.body.data.blob_id), undefined);
    const free = await app.api('GET', `/api/v1/mailboxes/availability?email=${encodeURIComponent(email)}`);
    assert.equal(free.body.data.reason, 'available');
    const again = await app.api('POST', '/api/v1/mailboxes', { body: { email } });
    assert.equal(again.status, 201, again.text);
    assert.notEqual(again.body.data.mailbox.id, id);
    // A live mailbox is untouched.
    assert.equal((await app.services.store.mailboxes.get(other.body.data.mailbox.id))?.status, 'active');
  });

  test('a pass drops idempotency records once they expire on the clock, and only those', async () => {
    const store = app.services.store;
    const t = clock.now();
    const row = (key: string, ttl: number) => ({
      scope: 'team:maintenance:POST /x',
      key,
      fingerprint: `fp-${key}`,
      state: 'in_flight' as const,
      status_code: null,
      response: null,
      created_at: iso(t),
      expires_at: iso(t + ttl),
    });
    assert.equal(await store.idempotency.claim(row('short', HOUR)), null);
    assert.equal(await store.idempotency.claim(row('long', 3 * HOUR)), null);
    const worker = new MaintenanceWorker(app.services);

    await worker.pass();
    assert.equal((await store.idempotency.claim(row('short', HOUR)))?.fingerprint, 'fp-short', 'not expired yet');

    clock.t = t + 2 * HOUR;
    await worker.pass();
    // Gone: a claim with a fresh fingerprint now succeeds (and is the new record).
    assert.equal(await store.idempotency.claim({ ...row('short', HOUR), fingerprint: 'fresh', created_at: iso(t + 2 * HOUR) }), null);
    assert.equal((await store.idempotency.claim(row('long', 3 * HOUR)))?.fingerprint, 'fp-long', 'still live');

    clock.t = t + 4 * HOUR;
    await worker.pass();
    assert.equal(await store.idempotency.claim({ ...row('long', 3 * HOUR), fingerprint: 'fresh', created_at: iso(t + 4 * HOUR) }), null);
    clock.t = t;
  });

  test('an Idempotency-Key replays until a pass after its 24 h lifetime drops it', async () => {
    const body = { email: 'idem@agents.mailmux.test' };
    const headers = { 'idempotency-key': 'maintenance-idem-1' };
    const first = await app.api('POST', '/api/v1/mailboxes', { body, headers });
    assert.equal(first.status, 201, first.text);
    const worker = new MaintenanceWorker(app.services);
    await worker.pass();
    // Straight through inject(): only the replay itself matters here (status, header, original body).
    const replay = await app.http.inject({
      method: 'POST',
      url: '/api/v1/mailboxes',
      headers: { ...headers, authorization: `Bearer ${app.rootKey}`, 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    });
    assert.equal(replay.statusCode, 201, replay.body);
    assert.equal(replay.headers['idempotent-replayed'], 'true');
    assert.equal(JSON.parse(replay.body).data.mailbox.id, first.body.data.mailbox.id);

    const saved = clock.t;
    clock.t = saved + IDEMPOTENCY_TTL_MS + HOUR;
    try {
      await worker.pass();
    } finally {
      clock.t = saved;
    }
    // The record is gone, so the same request runs again: the address is now taken.
    const rerun = await app.api('POST', '/api/v1/mailboxes', { body, headers });
    assert.equal(rerun.status, 409, rerun.text);
    assert.equal(rerun.headers['idempotent-replayed'], undefined);
  });

  test('a pass re-verifies custom domains on schedule; a domain fails after two scheduled misses in a row', async () => {
    const created = await app.api('POST', '/api/v1/domains', { body: { domain: 'maint.example' } });
    assert.equal(created.status, 201, created.text);
    const id = created.body.data.id as string;
    publish(dns.zone, 'maint.example', created.body.data.dns_records);
    const verified = await app.api('POST', `/api/v1/domains/${id}/verify`);
    assert.equal(verified.body.data.status, 'verified', verified.text);

    const worker = new MaintenanceWorker(app.services, { reverifyEveryMs: 6 * HOUR });
    const start = clock.now();
    // A worker that never ran a check re-verifies on its first pass; the records are there.
    let queries = dns.queries;
    await worker.pass();
    assert.ok(dns.queries > queries, 'the first pass looked the records up');
    assert.equal((await app.services.store.domains.get(id))?.verification_status, 'verified');

    // The records disappear. Within the interval nothing is looked up.
    dns.zone.txt.clear();
    dns.zone.mx.clear();
    clock.t = start + HOUR;
    queries = dns.queries;
    await worker.pass();
    assert.equal(dns.queries, queries, 'no re-verification before the interval');

    // First scheduled miss: still verified, one strike.
    clock.t = start + 6 * HOUR;
    await worker.pass();
    let row = await app.services.store.domains.get(id);
    assert.equal(row?.verification_status, 'verified');
    assert.equal(row?.fail_streak, 1);

    // Second scheduled miss in a row: failed.
    clock.t = start + 12 * HOUR;
    await worker.pass();
    row = await app.services.store.domains.get(id);
    assert.equal(row?.verification_status, 'failed');
    assert.equal(row?.checked_at, iso(start + 12 * HOUR));
    clock.t = start;
  });

  test('a pass drops the events past the replay window and keeps the newer ones', async () => {
    const mailbox = await app.api('POST', '/api/v1/mailboxes', { body: { email: 'events-window@agents.mailmux.test' } });
    assert.equal(mailbox.status, 201, mailbox.text);
    const mailboxId = mailbox.body.data.mailbox.id as string;
    const emit = (n: number) =>
      app.services.store.transaction(async (tx) => {
        const rows = [];
        for (let i = 0; i < n; i++) rows.push(await app.services.events.emit(tx, { type: 'message.received', teamId: app.teamId, mailboxId, data: { mailbox_id: mailboxId } }));
        return rows.map((r) => Number(r.seq));
      });
    const start = clock.t;
    const old = await emit(3);
    assert.equal(old.length, 3);
    clock.t = start + 2 * HOUR;
    const kept = await emit(2);
    // Past the window for the first three only.
    clock.t = start + (app.config.realtime.eventRetentionHours + 1) * HOUR;
    await new MaintenanceWorker(app.services).pass();
    const left = (await app.services.store.events.forMailboxAfter(mailboxId, 0, null, 10)).map((e) => Number(e.seq));
    assert.deepEqual(left, kept);
    clock.t = start;
  });
});
