// Every refusal of the inbound listener with its exact reply code, and the incoming-log rows that
// record them: unknown recipient, relay, suspended and deleted mailboxes, sender filters (mailbox
// rules replace domain rules), quota at RCPT (with and without SIZE) and at DATA, message size.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { QUOTA_DEFAULT } from '../../src/config/limits.ts';
import { describeEachBackend } from '../helpers/backends.ts';
import { buildMessage, createMailbox, type TestMailbox } from '../helpers/mail.ts';
import { createMailbox as createMailboxOn, verifiedDomain } from '../helpers/management.ts';
import { session, SmtpClient, startSmtpRig, storedMessages, transact, type SmtpRig } from '../helpers/smtp.ts';

describeEachBackend('smtp inbound rejections', (backend) => {
  let rig: SmtpRig;
  let agent: TestMailbox;
  before(async () => {
    rig = await startSmtpRig(backend, { MAILMUX_SMTP_MAX_MESSAGE_BYTES: '20000' });
    agent = await createMailbox(rig.app, 'agent');
  });
  after(async () => rig.close());

  /** One RCPT in a fresh transaction; returns its reply line. */
  async function rcpt(to: string, from = 'sender@example.org', mailParams = ''): Promise<string> {
    const client = await session(rig.port);
    try {
      const mail = await client.command(`MAIL FROM:<${from}>${mailParams}`);
      if (mail.code !== 250) return mail.last;
      return (await client.command(`RCPT TO:<${to}>`)).last;
    } finally {
      await client.quit();
    }
  }

  test('unknown recipient on a hosted domain: 550 5.1.1, logged as rejected with no team', async () => {
    assert.match(await rcpt('nobody@agents.mailmux.test'), /^550 5\.1\.1 /);
    const row = rig.logs.refused.at(-1);
    assert.ok(row);
    const stored = await rig.app.services.store.incomingLogs.get(row.id);
    assert.equal(stored?.status, 'rejected');
    assert.equal(stored?.reason, 'unknown_recipient');
    assert.equal(stored?.team_id, null);
    assert.equal(stored?.mailbox_id, null);
    assert.equal(stored?.from_email, 'sender@example.org');
    assert.deepEqual(JSON.parse(stored?.to_emails ?? '[]'), ['nobody@agents.mailmux.test']);
  });

  test('a domain not hosted here, or hosted but not receiving: 550 5.7.1 relay denied, not logged', async () => {
    const logged = rig.logs.refused.length;
    assert.match(await rcpt('someone@gmail.example'), /^550 5\.7\.1 Relay access denied/);
    await verifiedDomain(rig.app, rig.dns, 'sendonly.test', 'send_only');
    assert.match(await rcpt('a@sendonly.test'), /^550 5\.7\.1 Relay access denied/);
    assert.equal(rig.logs.refused.length, logged);
  });

  test('suspended mailbox: 550 5.2.1; resumed: accepted again', async () => {
    const m = await createMailbox(rig.app, 'sleepy');
    assert.equal((await rig.app.api('POST', `/api/v1/mailboxes/${m.id}/suspend`)).status, 200);
    assert.match(await rcpt(m.email), /^550 5\.2\.1 /);
    assert.equal(rig.logs.refused.at(-1)?.reason, 'mailbox_inactive');
    assert.equal(rig.logs.refused.at(-1)?.mailbox_id, m.id);
    assert.equal((await rig.app.api('POST', `/api/v1/mailboxes/${m.id}/resume`)).status, 200);
    assert.match(await rcpt(m.email), /^250 /);
  });

  test('deleted mailbox (still being purged): 550 5.2.1', async () => {
    const m = await createMailbox(rig.app, 'gone');
    assert.equal((await rig.app.api('DELETE', `/api/v1/mailboxes/${m.id}`)).status, 200);
    assert.match(await rcpt('gone+tag@agents.mailmux.test'), /^550 5\.2\.1 /);
  });

  test('sender filters on the envelope sender: 550 5.7.1; mailbox rules replace domain rules', async () => {
    const domain = await verifiedDomain(rig.app, rig.dns, 'filtered.test', 'send_receive');
    const own = (await createMailboxOn(rig.app, 'own@filtered.test')).mailbox;
    const plain = (await createMailboxOn(rig.app, 'plain@filtered.test')).mailbox;
    const put = async (url: string, body: unknown): Promise<void> => assert.equal((await rig.app.api('PUT', url, { body })).status, 200);
    await put(`/api/v1/domains/${domain.id}/filters`, { mode: 'denylist', rules: [{ type: 'deny', pattern: 'bad.example' }] });
    await put(`/api/v1/mailboxes/${own.id}/filters`, { mode: 'allowlist', rules: [{ type: 'allow', pattern: '*@bad.example' }] });

    // plain@ follows the domain's denylist.
    assert.match(await rcpt('plain@filtered.test', 'x@bad.example'), /^550 5\.7\.1 Sender address rejected/);
    assert.match(await rcpt('plain@filtered.test', 'x@good.example'), /^250 /);
    // own@ has its own allowlist, which replaces the domain's rules entirely.
    assert.match(await rcpt('own@filtered.test', 'x@bad.example'), /^250 /);
    assert.match(await rcpt('own+tag@filtered.test', 'x@good.example'), /^550 5\.7\.1 /);
    // The From header does not matter: the envelope sender does.
    const r = await transact(rig.port, 'x@bad.example', ['plain@filtered.test'], await buildMessage({ from: 'x@good.example', to: 'plain@filtered.test' }));
    assert.match(r.rcpt[0]?.last ?? '', /^550 5\.7\.1 /);
    assert.equal(r.data, null);
    assert.equal((await storedMessages(rig.app, plain.id)).length, 0);

    const row = rig.logs.refused.at(-1);
    assert.equal(row?.reason, 'sender_filtered');
    assert.equal(row?.mailbox_id, plain.id);
    assert.equal(row?.team_id, null, 'filtered mail is not billable inbound');
    // The team's billing log has none of these.
    const list = await rig.app.api('GET', '/api/v1/inboxes/logs?limit=100');
    assert.equal(list.status, 200);
    assert.equal(list.body.data.filter((l: { mailbox_id: string }) => l.mailbox_id === plain.id).length, 0);
  });

  test('over quota at RCPT: 452 4.2.2 by default, using SIZE when given', async () => {
    const m = await createMailbox(rig.app, 'full');
    await rig.app.services.store.mailboxes.update(m.id, { used_bytes: QUOTA_DEFAULT - 1000 });
    assert.match(await rcpt(m.email, 'a@example.org', ' SIZE=5000'), /^452 4\.2\.2 /);
    assert.match(await rcpt(m.email, 'a@example.org', ' SIZE=500'), /^250 /);
    assert.match(await rcpt(m.email), /^250 /, 'without SIZE there is still room');
    assert.equal(rig.logs.refused.find((r) => r.mailbox_id === m.id)?.reason, 'over_quota');
    await rig.app.services.store.mailboxes.update(m.id, { used_bytes: QUOTA_DEFAULT });
    assert.match(await rcpt(m.email), /^452 4\.2\.2 /, 'a full mailbox is refused without SIZE');
  });

  test('over quota found at DATA (no SIZE given): ingest refuses and the reply is 452 4.2.2', async () => {
    const m = await createMailbox(rig.app, 'almost');
    await rig.app.services.store.mailboxes.update(m.id, { used_bytes: QUOTA_DEFAULT - 100 });
    const r = await transact(rig.port, 'a@example.org', [m.email], await buildMessage({ to: m.email, text: 'x'.repeat(500) }));
    assert.equal(r.rcpt[0]?.code, 250);
    assert.match(r.data?.last ?? '', /^452 4\.2\.2 /);
    assert.equal((await storedMessages(rig.app, m.id)).length, 0);
    assert.equal(rig.logs.refused.at(-1)?.reason, 'over_quota');
  });

  test('SIZE over the limit at MAIL and an oversized DATA: 552 5.3.4, nothing stored', async () => {
    const client = await session(rig.port);
    assert.match((await client.command('EHLO client.example')).text, /SIZE 20000/);
    assert.match((await client.command('MAIL FROM:<big@example.org> SIZE=30000')).last, /^552 5\.3\.4 /);
    await client.quit();

    const before1 = (await storedMessages(rig.app, agent.id)).length;
    const r = await transact(rig.port, 'big@example.org', [agent.email], await buildMessage({ to: agent.email, text: 'y'.repeat(30_000) }));
    assert.match(r.data?.last ?? '', /^552 5\.3\.4 /);
    assert.equal((await storedMessages(rig.app, agent.id)).length, before1);
    assert.equal(rig.logs.refused.at(-1)?.reason, 'message_too_large');
  });
});

describeEachBackend('smtp inbound session limits', (backend) => {
  let rig: SmtpRig;
  let agent: TestMailbox;
  before(async () => {
    rig = await startSmtpRig(backend, {
      MAILMUX_SMTP_MAX_RECIPIENTS: '3',
      MAILMUX_SMTP_MAX_COMMANDS: '8',
      MAILMUX_SMTP_IDLE_TIMEOUT_SECONDS: '1',
      MAILMUX_SMTP_QUOTA_REPLY: 'permanent',
      MAILMUX_SMTP_MAX_CONNECTIONS: '2',
    });
    agent = await createMailbox(rig.app, 'agent');
  });
  after(async () => rig.close());

  test('too many recipients: 452 4.5.3 past the limit, the accepted ones still get the message', async () => {
    const others = await Promise.all(['b1', 'b2'].map((l) => createMailbox(rig.app, l)));
    const r = await transact(rig.port, 'a@example.org', [agent.email, others[0]!.email, others[1]!.email, 'b3@agents.mailmux.test'], await buildMessage({ to: agent.email, subject: 'many' }));
    assert.deepEqual(r.rcpt.map((x) => x.code), [250, 250, 250, 452]);
    assert.match(r.rcpt[3]?.last ?? '', /^452 4\.5\.3 /);
    assert.equal(r.data?.code, 250);
    assert.equal((await storedMessages(rig.app, others[1]!.id)).length, 1);
  });

  test('over quota answers 552 5.2.2 when configured permanent', async () => {
    const m = await createMailbox(rig.app, 'fullp');
    await rig.app.services.store.mailboxes.update(m.id, { used_bytes: QUOTA_DEFAULT });
    const r = await transact(rig.port, 'a@example.org', [m.email], 'Subject: x\r\n\r\nx');
    assert.match(r.rcpt[0]?.last ?? '', /^552 5\.2\.2 /);
  });

  test('too many commands in one session: 421 4.7.0 and the connection closes', async () => {
    const client = await session(rig.port); // EHLO is command 1
    for (let i = 0; i < 7; i++) assert.equal((await client.command('NOOP')).code, 250);
    const reply = await client.command('NOOP');
    assert.match(reply.last, /^421 4\.7\.0 /);
    await client.closed;
  });

  test('a command line over the limit: 421 and the connection closes', async () => {
    const client = await session(rig.port);
    const reply = await client.command(`MAIL FROM:<${'a'.repeat(3000)}@example.org>`);
    assert.equal(reply.code, 421);
    await client.closed;
  });

  test('connections beyond the limit get 421 at once', async () => {
    const first = await SmtpClient.connect(rig.port);
    const second = await SmtpClient.connect(rig.port);
    const third = await SmtpClient.connect(rig.port);
    assert.equal(first.greeting.code, 220);
    assert.equal(second.greeting.code, 220);
    assert.equal(third.greeting.code, 421);
    await third.client.closed;
    await first.client.quit();
    await second.client.quit();
  });

  test('an idle session is closed after the idle timeout with 421', async () => {
    const client = await session(rig.port);
    const started = Date.now();
    const reply = await client.reply();
    assert.equal(reply.code, 421);
    await client.closed;
    assert.ok(Date.now() - started >= 900);
  });
});
