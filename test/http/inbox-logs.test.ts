// GET /inboxes/logs and GET /inboxes/logs/{public_id}, every answer checked against the spec:
// default page size 25, cursors, mailbox / event type / UTC date / search filters, team isolation,
// rejected rows kept out of the billing log, and one log by id.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { describeEachBackend } from '../helpers/backends.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { createMailbox, type TestMailbox } from '../helpers/mail.ts';
import { assertError, rawApi, secondTeam } from '../helpers/management.ts';
import { acceptedRows, IncomingLogsService } from '../../src/services/mail/incoming-logs.ts';

const DAY = 86_400_000;
const T0 = Date.parse('2026-11-18T00:00:00Z');

describeEachBackend('incoming logs API', (backend) => {
  let app: TestApp;
  let a: TestMailbox;
  let b: TestMailbox;
  let logs: IncomingLogsService;
  before(async () => {
    app = await startTestApp(backend);
    a = await createMailbox(app, 'alpha');
    b = await createMailbox(app, 'beta');
    logs = new IncomingLogsService(app.services);
    const accepted = [];
    // 30 deliveries to alpha over three days (10 a day, 23:00 + i minutes UTC the day before... spread), 3 spam to beta.
    for (let i = 0; i < 30; i++) {
      accepted.push({
        teamId: app.teamId, mailboxId: a.id, mailboxEmail: a.email, recipients: [a.email], fromEmail: `sender${i}@example.org`,
        subject: `Invoice ${i}`, rfcMessageId: `inv${i}@example.org`, sizeBytes: 1000 + i, isSpam: false, receivedAt: T0 + Math.floor(i / 10) * DAY + (i % 10) * 3_600_000 + 90_000,
      });
    }
    for (let i = 0; i < 3; i++) {
      accepted.push({
        teamId: app.teamId, mailboxId: b.id, mailboxEmail: b.email, recipients: ['beta+promo@agents.mailmux.test'], fromEmail: null,
        subject: null, rfcMessageId: null, sizeBytes: 500, isSpam: true, receivedAt: T0 + DAY + 23 * 3_600_000 + i,
      });
    }
    await app.services.store.incomingLogs.insert(acceptedRows(accepted));
    await logs.recordRefused([{ mailboxId: a.id, mailboxEmail: a.email, recipient: a.email, sender: 'blocked@bad.example', reason: 'sender_filtered', sizeBytes: null, receivedAt: T0 + DAY }]);
  });
  after(async () => app.close());

  test('list: newest first, default 25 per page, cursor to the rest; spec-valid items', async () => {
    const first = await app.api('GET', '/api/v1/inboxes/logs');
    assert.equal(first.status, 200, first.text);
    assert.equal(first.body.data.length, 25);
    assert.equal(first.body.pagination.has_more, true);
    const times = first.body.data.map((l: { received_at: string }) => l.received_at);
    assert.deepEqual(times, [...times].sort().reverse());
    const second = await app.api('GET', `/api/v1/inboxes/logs?cursor=${first.body.pagination.next_cursor}`);
    assert.equal(second.body.data.length, 8, 'the sender-filtered rejection is not a billable log');
    assert.equal(second.body.pagination.has_more, false);
    const all = [...first.body.data, ...second.body.data];
    assert.equal(new Set(all.map((l: { id: string }) => l.id)).size, 33);
    assert.ok(all.every((l: { id: string }) => /^ilog_[a-z0-9]{24}$/.test(l.id)));

    const item = all.find((l: { subject: string | null }) => l.subject === 'Invoice 12');
    assert.deepEqual(item, {
      id: item.id,
      mailbox_id: a.id,
      mailbox_email: a.email,
      event_type: 'message.received',
      message_id: 'inv12@example.org',
      message_id_kind: 'rfc5322',
      from_email: 'sender12@example.org',
      to_emails: [a.email],
      subject: 'Invoice 12',
      size_bytes: 1012,
      received_at: '2026-11-19T02:01:30.000Z',
      is_spam: false,
      billing_bucket_start: '2026-11-19T02:00:00.000Z',
      unit_amount: '0',
      amount: '0',
    });
  });

  test('filters: mailbox_id, event_type, search, limit', async () => {
    const spam = await app.api('GET', '/api/v1/inboxes/logs?event_type=message.received.spam');
    assert.equal(spam.body.data.length, 3);
    assert.ok(spam.body.data.every((l: { is_spam: boolean; mailbox_id: string; message_id: null; message_id_kind: null }) => l.is_spam && l.mailbox_id === b.id && l.message_id === null && l.message_id_kind === null));
    const byMailbox = await app.api('GET', `/api/v1/inboxes/logs?mailbox_id=${b.id}&limit=2`);
    assert.equal(byMailbox.body.data.length, 2);
    assert.equal(byMailbox.body.pagination.has_more, true);
    for (const [q, n] of [['INVOICE 2', 11], ['sender7@', 1], ['inv29@example.org', 1], ['beta+promo', 3], ['alpha@agents', 30], ['100%_', 0]] as const) {
      const res = await app.api('GET', `/api/v1/inboxes/logs?limit=100&search=${encodeURIComponent(q)}`);
      assert.equal(res.body.data.length, n, `search ${q}`);
    }
  });

  test('date filters: date-only from is 00:00 UTC, to includes the whole UTC day', async () => {
    const day2 = await app.api('GET', '/api/v1/inboxes/logs?limit=100&from_date=2026-11-19&to_date=2026-11-19');
    assert.equal(day2.body.data.length, 13);
    assert.ok(day2.body.data.every((l: { received_at: string }) => l.received_at.startsWith('2026-11-19')));
    const from = await app.api('GET', '/api/v1/inboxes/logs?limit=100&from_date=2026-11-20');
    assert.equal(from.body.data.length, 10);
    const to = await app.api('GET', '/api/v1/inboxes/logs?limit=100&to_date=2026-11-18');
    assert.equal(to.body.data.length, 10);
    const instant = await app.api('GET', '/api/v1/inboxes/logs?limit=100&from_date=2026-11-18T09:01:30Z&to_date=2026-11-19T00:01:30Z');
    assert.deepEqual(instant.body.data.map((l: { subject: string }) => l.subject), ['Invoice 10', 'Invoice 9']);
    const bad = await rawApi(app, 'GET', '/api/v1/inboxes/logs?from_date=last-week');
    assertError(bad, 400, 'invalid_parameter');
    const badType = await rawApi(app, 'GET', '/api/v1/inboxes/logs?event_type=message.bounced');
    assertError(badType, 400, 'invalid_parameter');
    const badCursor = await rawApi(app, 'GET', '/api/v1/inboxes/logs?cursor=nope');
    assertError(badCursor, 400, 'invalid_parameter');
  });

  test('get one log; unknown ids, rejected rows and other teams\' logs are 404', async () => {
    const list = await app.api('GET', '/api/v1/inboxes/logs?limit=1');
    const id = list.body.data[0].id;
    const one = await app.api('GET', `/api/v1/inboxes/logs/${id}`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body.data, list.body.data[0]);
    assertError(await app.api('GET', '/api/v1/inboxes/logs/ilog_000000000000000000000000'), 404, 'not_found');
    const [rejected] = await logs.recordRefused([{ mailboxId: a.id, mailboxEmail: a.email, recipient: a.email, sender: '', reason: 'over_quota', sizeBytes: 10, receivedAt: T0 }]);
    assertError(await app.api('GET', `/api/v1/inboxes/logs/${rejected!.id}`), 404, 'not_found');
    const other = await secondTeam(app);
    assertError(await app.api('GET', `/api/v1/inboxes/logs/${id}`, { token: other.rootKey }), 404, 'not_found');
    const otherList = await app.api('GET', '/api/v1/inboxes/logs', { token: other.rootKey });
    assert.deepEqual(otherList.body.data, []);
  });

  test('root key only', async () => {
    assertError(await app.api('GET', '/api/v1/inboxes/logs', { token: null }), 401, 'authentication_required');
    assertError(await app.api('GET', '/api/v1/inboxes/logs', { token: a.key }), 403, 'insufficient_permissions');
  });
});
