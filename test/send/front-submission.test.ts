// SMTP submission with a real client (nodemailer) over loopback: STARTTLS (2587-style) and implicit
// TLS (2465-style), AUTH PLAIN/LOGIN on the mailbox credential only after TLS, sender ownership
// (550 5.7.1), suspended mailboxes, missing Message-ID/Date added, Bcc stripped, and the Sent copy
// read back through the Mailbox API.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { describeEachBackend } from '../helpers/backends.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { createMailbox, type TestMailbox } from '../helpers/mail.ts';
import { startSubmission, type SubmissionSmtp } from '../../src/protocols/smtp/submission.ts';
import { loadConfig } from '../../src/config/config.ts';
import { startMailmux } from '../../src/app/app.ts';
import { silentLogger } from '../../src/services/context.ts';

type Opts = { port: number; secure?: boolean; user?: string; pass?: string; ignoreTLS?: boolean; method?: 'PLAIN' | 'LOGIN' };

function transport(o: Opts) {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port: o.port,
    secure: o.secure ?? false,
    ...(o.ignoreTLS ? { ignoreTLS: true } : { requireTLS: !o.secure }),
    tls: { rejectUnauthorized: false },
    ...(o.user ? { auth: { user: o.user, pass: o.pass ?? '' }, authMethod: o.method ?? 'PLAIN' } : {}),
    connectionTimeout: 5000,
    greetingTimeout: 5000,
  });
}

async function failure(p: Promise<unknown>): Promise<{ responseCode?: number; response?: string; code?: string }> {
  try {
    await p;
  } catch (err) {
    return err as { responseCode?: number; response?: string };
  }
  throw new Error('expected the SMTP transaction to fail');
}

describeEachBackend('SMTP submission front-end', (backend) => {
  let app: TestApp;
  let mbx: TestMailbox;
  let smtp: SubmissionSmtp;
  const call = (method: string, url: string) => app.api(method, url, { token: mbx.key });
  const sentBySubject = async (subject: string) => (await call('GET', `/api/v1/mailbox/messages?folder_id=sent&subject=${encodeURIComponent(subject)}`)).body.data as Array<{ id: string; thread_id: string }>;
  const rawOf = async (messageId: string): Promise<string> => {
    const row = await app.services.store.messages.get(messageId);
    return (await app.services.store.blobs.get(row!.blob_sha256))!.toString('latin1');
  };

  before(async () => {
    app = await startTestApp(backend);
    mbx = await createMailbox(app, 'smtp-agent');
    smtp = await startSubmission(app.services, { host: '127.0.0.1', port: 0, tlsPort: 0 });
  });
  after(async () => {
    await smtp.close();
    await app.close();
  });

  test('STARTTLS + AUTH PLAIN: queued like an API send, Sent copy visible, Bcc only in the envelope', async () => {
    const info = await transport({ port: smtp.port, user: mbx.email, pass: mbx.key }).sendMail({
      from: `Agent <${mbx.email}>`, to: 'customer@example.org', bcc: 'hidden@example.org', subject: 'via submission', text: 'Hello over SMTP',
    });
    assert.match(info.response, /^250 2\.0\.0 Ok: queued as eml_[a-z0-9]{24}/);
    const emailId = /eml_[a-z0-9]{24}/.exec(info.response)![0];
    const sub = await app.services.store.submissions.byEmailId(emailId);
    assert.ok(sub);
    assert.deepEqual([...(JSON.parse(sub.rcpt_to) as string[])].sort(), ['customer@example.org', 'hidden@example.org']);
    const [copy] = await sentBySubject('via submission');
    assert.ok(copy, 'the Sent copy is listed');
    const raw = await rawOf(copy.id);
    assert.doesNotMatch(raw, /hidden@example\.org/);
    const detail = await call('GET', `/api/v1/mailbox/messages/${copy.id}`);
    assert.equal(detail.status, 200);
    assert.equal(detail.body.data.text_body.trim(), 'Hello over SMTP');
  });

  test('implicit TLS + AUTH LOGIN; a message without Message-ID and Date gets both', async () => {
    const raw = `From: ${mbx.email}\r\nTo: someone@example.org\r\nBcc: blind@example.org\r\nSubject: bare message\r\n\r\nNo id, no date.\r\n`;
    const info = await transport({ port: smtp.tlsPort, secure: true, user: mbx.email, pass: mbx.key, method: 'LOGIN' }).sendMail({
      envelope: { from: mbx.email, to: ['someone@example.org', 'blind@example.org'] },
      raw,
    });
    assert.match(info.response, /^250 /);
    const [copy] = await sentBySubject('bare message');
    assert.ok(copy);
    const stored = await rawOf(copy.id);
    assert.match(stored, /^Message-ID: <[a-z0-9]{24}@agents\.mailmux\.test>/m);
    assert.match(stored, /^Date: /m);
    assert.doesNotMatch(stored, /^Bcc:/im);
  });

  test('AUTH is refused before STARTTLS, and with a wrong password (535 5.7.8)', async () => {
    const clear = await failure(transport({ port: smtp.port, ignoreTLS: true, user: mbx.email, pass: mbx.key }).sendMail({ from: mbx.email, to: 'a@example.org', subject: 'x', text: 'x' }));
    assert.equal(clear.responseCode, 538, clear.response);
    const wrong = await failure(transport({ port: smtp.port, user: mbx.email, pass: 'smx_mbx_wrongwrongwrong' }).sendMail({ from: mbx.email, to: 'a@example.org', subject: 'x', text: 'x' }));
    assert.equal(wrong.responseCode, 535);
    assert.match(wrong.response ?? '', /5\.7\.8/);
    const otherUser = await failure(transport({ port: smtp.port, user: 'someone@agents.mailmux.test', pass: mbx.key }).sendMail({ from: mbx.email, to: 'a@example.org', subject: 'x', text: 'x' }));
    assert.equal(otherUser.responseCode, 535, 'the username must be the key\'s mailbox');
    const none = await failure(transport({ port: smtp.port }).sendMail({ from: mbx.email, to: 'a@example.org', subject: 'x', text: 'x' }));
    assert.equal(none.responseCode, 530);
  });

  test('the envelope sender and the From header must be the mailbox (550 5.7.1)', async () => {
    const t = transport({ port: smtp.port, user: mbx.email, pass: mbx.key });
    const env = await failure(t.sendMail({ envelope: { from: 'ceo@example.org', to: ['a@example.org'] }, from: mbx.email, to: 'a@example.org', subject: 'spoof', text: 'x' }));
    assert.equal(env.responseCode, 550);
    assert.match(env.response ?? '', /5\.7\.1/);
    const hdr = await failure(t.sendMail({ envelope: { from: mbx.email, to: ['a@example.org'] }, from: 'ceo@example.org', to: 'a@example.org', subject: 'spoof', text: 'x' }));
    assert.equal(hdr.responseCode, 550);
    assert.match(hdr.response ?? '', /5\.7\.1/);
    assert.equal((await sentBySubject('spoof')).length, 0);
  });

  test('a suspended mailbox cannot authenticate or send; resumed, it can', async () => {
    assert.equal((await app.api('POST', `/api/v1/mailboxes/${mbx.id}/suspend`)).status, 200);
    const refused = await failure(transport({ port: smtp.port, user: mbx.email, pass: mbx.key }).sendMail({ from: mbx.email, to: 'a@example.org', subject: 'while suspended', text: 'x' }));
    assert.equal(refused.responseCode, 535);
    assert.equal((await app.api('POST', `/api/v1/mailboxes/${mbx.id}/resume`)).status, 200);
    const ok = await transport({ port: smtp.port, user: mbx.email, pass: mbx.key }).sendMail({ from: mbx.email, to: 'a@example.org', subject: 'after resume', text: 'x' });
    assert.match(ok.response, /^250 /);
  });

  test('recipients beyond the limit get 452 4.5.3; a message over 25 MB gets 552 after its data', async () => {
    const saved = app.config.smtp.maxRecipients;
    app.config.smtp.maxRecipients = 3;
    try {
      const info = await transport({ port: smtp.port, user: mbx.email, pass: mbx.key }).sendMail({ from: mbx.email, to: ['r1@example.org', 'r2@example.org', 'r3@example.org', 'r4@example.org'], subject: 'four recipients', text: 'x' });
      assert.deepEqual(info.accepted, ['r1@example.org', 'r2@example.org', 'r3@example.org']);
      assert.deepEqual(info.rejected, ['r4@example.org']);
      assert.equal((info as unknown as { rejectedErrors: { responseCode: number; response: string }[] }).rejectedErrors[0]!.responseCode, 452);
      assert.match((info as unknown as { rejectedErrors: { response: string }[] }).rejectedErrors[0]!.response, /4\.5\.3/);
    } finally {
      app.config.smtp.maxRecipients = saved;
    }
    const big = Buffer.alloc(26 * 1024 * 1024, 'a');
    const err = await failure(transport({ port: smtp.port, user: mbx.email, pass: mbx.key }).sendMail({ from: mbx.email, to: 'big@example.org', subject: 'too big', text: 'x', attachments: [{ filename: 'big.bin', content: big }] }));
    assert.equal(err.responseCode, 552, JSON.stringify(err));
    assert.equal((await sentBySubject('too big')).length, 0);
  });

  test('MAILMUX_SUBMISSION_ALLOW_INSECURE_AUTH lets AUTH through without TLS (development)', async () => {
    app.config.submissionAllowInsecureAuth = true;
    const dev = await startSubmission(app.services, { host: '127.0.0.1', port: 0, tlsPort: 0 });
    app.config.submissionAllowInsecureAuth = false;
    try {
      const info = await transport({ port: dev.port, ignoreTLS: true, user: mbx.email, pass: mbx.key }).sendMail({ from: mbx.email, to: 'a@example.org', subject: 'insecure dev', text: 'x' });
      assert.match(info.response, /^250 /);
    } finally {
      await dev.close();
    }
  });
});

describeEachBackend('SMTP submission started by startMailmux', (backend) => {
  test('both submission ports are bound and exposed; a send through them lands in Sent; close() releases them', async () => {
    const db = await backend.provision();
    const running = await startMailmux(
      loadConfig({
        MAILMUX_DATA_DIR: db.dataDir,
        ...(db.databaseUrl ? { MAILMUX_DATABASE_URL: db.databaseUrl } : {}),
        MAILMUX_HTTP_PORT: '0', MAILMUX_SMTP_PORT: '0', MAILMUX_SUBMISSION_PORT: '0', MAILMUX_SUBMISSIONS_PORT: '0',
        MAILMUX_HOSTNAME: 'mx.mailmux.test', MAILMUX_DEFAULT_DOMAIN: 'agents.mailmux.test', MAILMUX_LOG_LEVEL: 'silent',
        MAILMUX_SEND_UNDO_SECONDS: '3600',
      }),
      { log: silentLogger, ...(db.pgSchema ? { pgSchema: db.pgSchema } : {}) },
    );
    try {
      assert.ok(running.submissionPort > 0 && running.submissionsPort > 0 && running.submissionPort !== running.submissionsPort);
      const res = await fetch(`${running.httpUrl}/api/v1/mailboxes`, {
        method: 'POST',
        headers: { authorization: `Bearer ${running.initialRootKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'agent@agents.mailmux.test' }),
      });
      const key = ((await res.json()) as { data: { credential: { secret: string } } }).data.credential.secret;
      for (const [port, secure] of [[running.submissionPort, false], [running.submissionsPort, true]] as const) {
        const info = await transport({ port, secure, user: 'agent@agents.mailmux.test', pass: key }).sendMail({ from: 'agent@agents.mailmux.test', to: 'x@example.org', subject: `port ${port}`, text: 'hi' });
        assert.match(info.response, /^250 /);
      }
      const list = await fetch(`${running.httpUrl}/api/v1/mailbox/messages?folder_id=sent`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(((await list.json()) as { data: unknown[] }).data.length, 2);
    } finally {
      await running.close();
      await db.drop();
    }
  });
});
