// Inbound SMTP over real sockets: delivery into the inbox with the right index fields, trace
// headers, plus-addressing, one blob for several local recipients, STARTTLS, and sessions that
// break in the middle of DATA.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { describeEachBackend } from '../helpers/backends.ts';
import { buildMessage, createMailbox, type TestMailbox } from '../helpers/mail.ts';
import { verifiedDomain, createMailbox as createMailboxOn } from '../helpers/management.ts';
import { folderRoleOf, mailer, session, SmtpClient, startSmtpRig, storedMessages, storedRaw, transact, type SmtpRig } from '../helpers/smtp.ts';

describeEachBackend('smtp inbound delivery', (backend) => {
  let rig: SmtpRig;
  let agent: TestMailbox;
  let other: TestMailbox;
  before(async () => {
    rig = await startSmtpRig(backend);
    agent = await createMailbox(rig.app, 'agent');
    other = await createMailbox(rig.app, 'other');
  });
  after(async () => rig.close());

  test('EHLO advertises SIZE, STARTTLS, no AUTH', async () => {
    const { client, greeting } = await SmtpClient.connect(rig.port);
    assert.match(greeting.last, /^220 mx\.mailmux\.test ESMTP Mailmux$/);
    const ehlo = await client.command('EHLO client.example');
    assert.match(ehlo.text, /^250[- ]SIZE 26214400$/m);
    assert.match(ehlo.text, /STARTTLS/);
    assert.match(ehlo.text, /ENHANCEDSTATUSCODES/);
    assert.doesNotMatch(ehlo.text, /AUTH/);
    const auth = await client.command('AUTH PLAIN AGZvbwBiYXI=');
    assert.match(auth.last, /^500 5\.5\.2 /);
    await client.quit();
  });

  test('a message is stored in the inbox with its fields, a Received and an Authentication-Results header', async () => {
    const raw = await buildMessage({ from: 'Alice <alice@example.org>', to: agent.email, subject: 'Quarterly numbers', text: 'See attached.', messageId: '<q1@example.org>' });
    const r = await transact(rig.port, 'alice@example.org', [agent.email], raw);
    assert.equal(r.mail.last, '250 2.1.0 Accepted');
    assert.equal(r.rcpt[0]?.last, '250 2.1.5 Accepted');
    assert.match(r.data?.last ?? '', /^250 2\.6\.0 Message accepted, queued as [a-z0-9]{16}$/);

    const [row] = await storedMessages(rig.app, agent.id);
    assert.ok(row);
    assert.equal(row.subject, 'Quarterly numbers');
    assert.equal(row.rfc_message_id, 'q1@example.org');
    assert.equal(row.is_spam, 0);
    assert.equal(await folderRoleOf(rig.app, row), 'inbox');
    assert.match(row.auth_results ?? '', /^mx\.mailmux\.test; .*spf=none/);
    const stored = await storedRaw(rig.app, row);
    const lines = stored.split('\r\n');
    assert.match(lines[0] ?? '', /^Authentication-Results: mx\.mailmux\.test;/);
    const receivedAt = lines.findIndex((l) => l.startsWith('Received: '));
    assert.ok(receivedAt > 0);
    assert.match(lines.slice(receivedAt, receivedAt + 4).join('\n'), /^Received: from client\.example \((?:\S+ )?\[127\.0\.0\.1\]\)\n\tby mx\.mailmux\.test \(Mailmux\) with ESMTP id [a-z0-9]{16}\n\tfor <agent@agents\.mailmux\.test>;/);
    assert.ok(stored.endsWith(raw.toString('utf8').replace(/\r?\n/g, '\r\n')), 'the original message follows the trace headers unchanged');
    assert.equal(row.size_bytes, Buffer.byteLength(stored));

    // Through the Mailbox API too: the message is in the inbox list.
    const list = await rig.app.api('GET', '/api/v1/mailbox/messages', { token: agent.key });
    assert.equal(list.status, 200);
    assert.equal(list.body.data[0].id, row.id);
  });

  test('plus-addressing delivers local+tag@domain to local@domain (any case)', async () => {
    const before1 = (await storedMessages(rig.app, other.id)).length;
    const raw = await buildMessage({ to: 'Other+Receipts@agents.mailmux.test', subject: 'Receipt' });
    const r = await transact(rig.port, 'shop@example.org', ['Other+Receipts@Agents.Mailmux.Test'], raw);
    assert.equal(r.data?.code, 250, r.data?.text);
    const rows = await storedMessages(rig.app, other.id);
    assert.equal(rows.length, before1 + 1);
    assert.equal(rows.at(-1)?.subject, 'Receipt');
    const accepted = rig.logs.accepted.at(-1);
    assert.equal(accepted?.mailbox_id, other.id);
    assert.deepEqual(JSON.parse(accepted?.to_emails ?? '[]'), ['other+receipts@agents.mailmux.test']);
  });

  test('several local recipients: one blob, one index row per mailbox, one log row per mailbox', async () => {
    const third = await createMailbox(rig.app, 'third');
    const raw = await buildMessage({ to: [agent.email, third.email], cc: other.email, subject: 'Team update' });
    const loggedBefore = rig.logs.accepted.length;
    const r = await transact(rig.port, 'boss@example.org', [agent.email, third.email, other.email, 'third+cc@agents.mailmux.test'], raw);
    assert.ok(r.rcpt.every((x) => x.code === 250));
    assert.equal(r.data?.code, 250, r.data?.text);
    const rows = [];
    for (const m of [agent, third, other]) {
      const mine = (await storedMessages(rig.app, m.id)).filter((x) => x.subject === 'Team update');
      assert.equal(mine.length, 1, `${m.email} has exactly one copy`);
      rows.push(mine[0]!);
    }
    assert.equal(new Set(rows.map((x) => x.blob_sha256)).size, 1, 'all copies share one blob');
    // The Received header names no recipient when there are several (it would leak Bcc).
    const stored = await storedRaw(rig.app, rows[0]!);
    assert.doesNotMatch(stored.slice(0, stored.indexOf('\r\n\r\n')), /\tfor </);
    const logged = rig.logs.accepted.slice(loggedBefore);
    assert.equal(logged.length, 3);
    const thirdLog = logged.find((l) => l.mailbox_id === third.id);
    assert.deepEqual(JSON.parse(thirdLog?.to_emails ?? '[]').sort(), ['third+cc@agents.mailmux.test', 'third@agents.mailmux.test']);
  });

  test('mail for a mailbox on a verified custom send_receive domain is accepted', async () => {
    await verifiedDomain(rig.app, rig.dns, 'acme.test', 'send_receive');
    const { mailbox } = await createMailboxOn(rig.app, 'ops@acme.test');
    const r = await transact(rig.port, 'a@example.org', ['ops@acme.test'], await buildMessage({ to: 'ops@acme.test', subject: 'custom' }));
    assert.equal(r.data?.code, 250, r.data?.text);
    assert.equal((await storedMessages(rig.app, mailbox.id)).length, 1);
  });

  test('STARTTLS with the certificate, then delivery (nodemailer requireTLS)', async () => {
    const transport = mailer(rig.port, 'require');
    const info = await transport.sendMail({ envelope: { from: 'tls@example.org', to: [agent.email] }, raw: await buildMessage({ to: agent.email, subject: 'over tls' }) });
    transport.close();
    assert.deepEqual(info.accepted, [agent.email]);
    const row = (await storedMessages(rig.app, agent.id)).find((m) => m.subject === 'over tls');
    assert.ok(row);
    const stored = await storedRaw(rig.app, row);
    assert.match(stored, /with ESMTPS id [a-z0-9]{16}\r\n\t\(version=TLSv1\.[23] cipher=/);
  });

  test('a client that disconnects in the middle of DATA stores nothing; the next session is served', async () => {
    const before1 = (await storedMessages(rig.app, agent.id)).length;
    const client = await session(rig.port);
    assert.equal((await client.command('MAIL FROM:<half@example.org>')).code, 250);
    assert.equal((await client.command(`RCPT TO:<${agent.email}>`)).code, 250);
    assert.equal((await client.command('DATA')).code, 354);
    client.write('Subject: half\r\n\r\nthis message never ends');
    await new Promise((r) => setTimeout(r, 50));
    client.destroy();
    await client.closed;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await storedMessages(rig.app, agent.id)).length, before1);

    // Also a reset in the middle of a pipelined transaction, and a session with no commands at all.
    const idle = await SmtpClient.connect(rig.port);
    idle.client.destroy();
    const r = await transact(rig.port, 'next@example.org', [agent.email], await buildMessage({ to: agent.email, subject: 'after the break' }));
    assert.equal(r.data?.code, 250);
    assert.equal((await storedMessages(rig.app, agent.id)).length, before1 + 1);
  });

  test('pipelined groups (RFC 2920): every reply in order, the next group after the message, then STARTTLS', async () => {
    // Replies written in one turn go out in one socket write: order and content must not change.
    const client = await session(rig.port);
    const text = (subject: string): string => `Subject: ${subject}\r\nTo: ${agent.email}\r\n\r\nbody\r\n.\r\n`;
    client.write(`MAIL FROM:<p1@example.org>\r\nRCPT TO:<nobody@agents.mailmux.test>\r\nRCPT TO:<${agent.email}>\r\nDATA\r\n`);
    assert.equal((await client.reply()).last, '250 2.1.0 Accepted');
    assert.match((await client.reply()).last, /^550 5\.1\.1 /);
    assert.equal((await client.reply()).last, '250 2.1.5 Accepted');
    assert.equal((await client.reply()).code, 354);
    // The message's end and the next group in one write, as a pipelining MTA may send them.
    client.write(`${text('pipelined one')}MAIL FROM:<p2@example.org>\r\nRCPT TO:<${other.email}>\r\nDATA\r\n`);
    assert.match((await client.reply()).last, /^250 2\.6\.0 Message accepted/);
    assert.equal((await client.reply()).code, 250);
    assert.equal((await client.reply()).code, 250);
    assert.equal((await client.reply()).code, 354);
    client.write(`${text('pipelined two')}RSET\r\nNOOP\r\n`);
    assert.match((await client.reply()).last, /^250 2\.6\.0 Message accepted/);
    assert.equal((await client.reply()).code, 250);
    assert.equal((await client.reply()).code, 250);
    // The STARTTLS reply is not held back with the ones before it, and TLS starts cleanly after it.
    const secure = await client.startTls('mx.mailmux.test');
    const ehlo = await new Promise<string>((resolve) => {
      let got = '';
      secure.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        if (/^250 /m.test(got)) resolve(got);
      });
      secure.write('EHLO client.example\r\n');
    });
    assert.match(ehlo, /^250[- ]/);
    secure.destroy();
    assert.equal((await storedMessages(rig.app, agent.id)).filter((m) => m.subject === 'pipelined one').length, 1);
    assert.equal((await storedMessages(rig.app, other.id)).filter((m) => m.subject === 'pipelined two').length, 1);
  });

  test('RSET and a second transaction on one connection', async () => {
    const client = await session(rig.port);
    await client.command('MAIL FROM:<a@example.org>');
    await client.command(`RCPT TO:<${agent.email}>`);
    assert.equal((await client.command('RSET')).code, 250);
    assert.equal((await client.command('MAIL FROM:<b@example.org>')).code, 250);
    assert.equal((await client.command(`RCPT TO:<${other.email}>`)).code, 250);
    const data = await client.data(await buildMessage({ to: other.email, subject: 'second transaction' }));
    assert.equal(data.code, 250);
    await client.quit();
    assert.equal((await storedMessages(rig.app, agent.id)).filter((m) => m.subject === 'second transaction').length, 0);
    assert.equal((await storedMessages(rig.app, other.id)).filter((m) => m.subject === 'second transaction').length, 1);
  });
});
