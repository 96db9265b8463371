// Sender authentication and spam over real sockets, with SPF/DKIM/DMARC records served by the
// loopback DNS server: a DKIM-signed message passes, an SPF fail is recorded, DMARC failures and
// header rules put mail in the spam folder (message.received.spam in the incoming log), and
// rspamd's /checkv2 answer (from a tiny loopback HTTP server) replaces the built-in score.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { authenticate, dkimSign, sealMessage } from 'mailauth';
import { authenticateInbound, authenticationInput, dnsResolver } from '../../src/services/mail/inbound-auth.ts';
import { describeEachBackend } from '../helpers/backends.ts';
import { buildMessage, createMailbox, type TestMailbox } from '../helpers/mail.ts';
import { folderRoleOf, publishTxt, startSmtpRig, storedMessages, storedRaw, transact, type SmtpRig } from '../helpers/smtp.ts';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PRIVATE_PEM = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const PUBLIC_B64 = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');

async function signed(raw: Buffer, domain: string, selector: string): Promise<Buffer> {
  const key = { signingDomain: domain, selector, privateKey: PRIVATE_PEM, algorithm: 'rsa-sha256', canonicalization: 'relaxed/relaxed' };
  const result = await dkimSign(raw, { ...key, signatureData: [key] });
  assert.deepEqual(result.errors, []);
  return Buffer.concat([Buffer.from(result.signatures), raw]);
}

describeEachBackend('smtp inbound authentication and spam (built-in score)', (backend) => {
  let rig: SmtpRig;
  let agent: TestMailbox;
  before(async () => {
    rig = await startSmtpRig(backend);
    agent = await createMailbox(rig.app, 'agent');
    // A domain that does everything right.
    publishTxt(rig.dns, 'good.example', 'v=spf1 ip4:127.0.0.1 -all');
    publishTxt(rig.dns, 'mail._domainkey.good.example', `v=DKIM1; k=rsa; p=${PUBLIC_B64}`);
    publishTxt(rig.dns, '_dmarc.good.example', 'v=DMARC1; p=reject');
    // A domain whose mail never comes from 127.0.0.1, and says to reject failures.
    publishTxt(rig.dns, 'strict.example', 'v=spf1 ip4:192.0.2.10 -all');
    publishTxt(rig.dns, '_dmarc.strict.example', 'v=DMARC1; p=reject');
    // SPF fail without a DMARC policy.
    publishTxt(rig.dns, 'lax.example', 'v=spf1 ip4:192.0.2.10 -all');
  });
  after(async () => rig.close());

  test('a DKIM-signed message from an SPF-authorised client: dkim=pass, spf=pass, dmarc=pass, inbox', async () => {
    const raw = await signed(await buildMessage({ from: 'News <news@good.example>', to: agent.email, subject: 'Signed', messageId: '<s1@good.example>' }), 'good.example', 'mail');
    const r = await transact(rig.port, 'bounces@good.example', [agent.email], raw);
    assert.equal(r.data?.code, 250, r.data?.text);
    const row = (await storedMessages(rig.app, agent.id)).find((m) => m.subject === 'Signed');
    assert.ok(row);
    const stored = await storedRaw(rig.app, row);
    const ar = /^Authentication-Results: ([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)/.exec(stored)?.[1] ?? '';
    assert.match(ar, /dkim=pass[^;]*header\.[di]=@?good\.example/);
    assert.match(ar, /spf=pass[^;]*smtp\.mailfrom=bounces@good\.example/);
    assert.match(ar, /dmarc=pass/);
    assert.match(row.auth_results ?? '', /dkim=pass .*spf=pass .*dmarc=pass/);
    assert.equal(row.is_spam, 0);
    assert.equal(await folderRoleOf(rig.app, row), 'inbox');
    // The signature still verifies after our headers went on top: stored raw = trace + original.
    assert.ok(stored.endsWith(raw.toString('utf8')));
  });

  test('an ARC-sealed forward verifies: arc=pass; unsealed mail says arc=none', async () => {
    publishTxt(rig.dns, 'arc._domainkey.forwarder.example', `v=DKIM1; k=rsa; p=${PUBLIC_B64}`);
    const original = await buildMessage({ from: 'someone@elsewhere.example', to: agent.email, subject: 'Forwarded via list' });
    const seal = await sealMessage(original, { signingDomain: 'forwarder.example', selector: 'arc', privateKey: PRIVATE_PEM, cv: 'none', authResults: 'forwarder.example; spf=pass smtp.mailfrom=someone@elsewhere.example' });
    const r = await transact(rig.port, 'list@forwarder.example', [agent.email], Buffer.concat([seal, original]));
    assert.equal(r.data?.code, 250, r.data?.text);
    const row = (await storedMessages(rig.app, agent.id)).find((m) => m.subject === 'Forwarded via list');
    assert.match(row?.auth_results ?? '', /arc=pass/);
    const plain = (await storedMessages(rig.app, agent.id)).find((m) => m.subject === 'Signed');
    assert.match(plain?.auth_results ?? '', /arc=none/);
  });

  test('a tampered DKIM-signed message: dkim=fail', async () => {
    const raw = await signed(await buildMessage({ from: 'news@good.example', to: agent.email, subject: 'Tampered', text: 'original' }), 'good.example', 'mail');
    const tampered = Buffer.from(raw.toString('utf8').replace('original', 'altered!'));
    const r = await transact(rig.port, 'bounces@good.example', [agent.email], tampered);
    assert.equal(r.data?.code, 250);
    const row = (await storedMessages(rig.app, agent.id)).find((m) => m.subject === 'Tampered');
    assert.match(row?.auth_results ?? '', /dkim=(fail|neutral)/);
  });

  test('unsigned mail is authenticated on its header section, with the verdicts and header the whole message gets', async () => {
    const resolver = dnsResolver(rig.app.services.config.dnsServers);
    const lf = (b: Buffer): Buffer => Buffer.from(b.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
    const cases: [string, Buffer][] = [
      ['clean', await buildMessage({ from: 'news@good.example', to: agent.email, subject: 'Plain', text: 'body\r\n\r\nmore' })],
      ['DMARC p=reject failing', await buildMessage({ from: 'ceo@strict.example', to: agent.email, subject: 'Wire', text: 'pay now' })],
      ['bare LF line ends', lf(await buildMessage({ from: 'news@good.example', to: agent.email, subject: 'LF', text: 'a\nb' }))],
      ['empty body', Buffer.from(`From: a@lax.example\r\nTo: ${agent.email}\r\nSubject: empty\r\n\r\n`)],
    ];
    for (const [name, raw] of cases) {
      const head = authenticationInput(raw);
      assert.ok(head.length < raw.length || name === 'empty body', `${name}: only the header section is read`);
      for (const sender of ['bounces@good.example', 'x@strict.example']) {
        const opts = { ip: '127.0.0.1', helo: 'client.example', sender, mta: 'mx.mailmux.test', resolver, disableBimi: true, trustReceived: false };
        const whole = await authenticate(raw, opts);
        const got = await authenticateInbound({ raw, ip: opts.ip, helo: opts.helo, sender }, opts.mta, resolver);
        assert.equal(got.error, null);
        assert.equal(got.verdict.headerValue, /^Authentication-Results: ([^]*?)\r?\n(?=\S|$)/m.exec(whole.headers)?.[1]?.replace(/\r?\n/g, '\r\n'), `${name}, ${sender}`);
      }
    }
    // Signed or sealed mail is read whole: its body is hashed.
    const signedRaw = await signed(await buildMessage({ from: 'news@good.example', to: agent.email, subject: 'S' }), 'good.example', 'mail');
    assert.equal(authenticationInput(signedRaw), signedRaw);
    const sealed = Buffer.concat([Buffer.from('ARC-Seal: i=1; a=rsa-sha256; cv=none; d=x; s=y; b=\r\n'), await buildMessage({ to: agent.email })]);
    assert.equal(authenticationInput(sealed), sealed);
  });

  test('verdicts reused for unsigned mail are a fresh check\'s: another author, envelope or client gets its own', async () => {
    const resolver = dnsResolver(rig.app.services.config.dnsServers);
    const mta = 'mx.mailmux.test';
    const fresh = async (raw: Buffer, sender: string, ip: string): Promise<string | undefined> => {
      const r = await authenticate(raw, { ip, helo: 'client.example', sender, mta, resolver, disableBimi: true, trustReceived: false });
      return /^Authentication-Results: ([^]*?)\r?\n(?=\S|$)/m.exec(r.headers)?.[1]?.replace(/\r?\n/g, '\r\n');
    };
    const check = (raw: Buffer, sender: string, ip: string) => authenticateInbound({ raw, ip, helo: 'client.example', sender }, mta, resolver);
    const mk = (from: string, subject: string, headers: Record<string, string> = {}): Promise<Buffer> => buildMessage({ from, to: agent.email, subject, text: `${subject} body`, headers });
    const good1 = await mk('news@good.example', 'one');
    const good2 = await mk('news@good.example', 'two', { Received: 'from a.example by b.example; Fri, 20 Nov 2026 09:00:00 +0000', 'X-Mailer': 'from nowhere' });
    // The same envelope with another author: DMARC fails for strict.example.
    const strict = await mk('ceo@strict.example', 'three');
    // An author on a folded line, and a Subject whose folded line looks like a From.
    const folded = Buffer.from(`Subject: s\r\n From: news@good.example\r\nFrom: "CEO"\r\n <ceo@strict.example>\r\nTo: ${agent.email}\r\n\r\nbody\r\n`);
    const foldedGood = Buffer.from(folded.toString('latin1').replace(' <ceo@strict.example>', ' <news@good.example>'), 'latin1');
    const first = await check(good1, 'bounces@good.example', '127.0.0.1');
    const again = await check(good2, 'bounces@good.example', '127.0.0.1');
    assert.equal(again.verdict, first.verdict, 'the same client, envelope and author: the verdicts are reused');
    const cases: [Buffer, string, string][] = [
      [good1, 'bounces@good.example', '127.0.0.1'],
      [good2, 'bounces@good.example', '127.0.0.1'],
      [strict, 'bounces@good.example', '127.0.0.1'],
      [folded, 'bounces@good.example', '127.0.0.1'],
      [foldedGood, 'bounces@good.example', '127.0.0.1'],
      [good1, 'x@strict.example', '127.0.0.1'],
      [good1, 'bounces@good.example', '192.0.2.10'],
      [strict, 'x@strict.example', '192.0.2.10'],
      [good2, 'bounces@good.example', '127.0.0.1'],
    ];
    const seen = new Set<string>();
    for (const [raw, sender, ip] of cases) {
      const got = (await check(raw, sender, ip)).verdict.headerValue;
      assert.equal(got, await fresh(raw, sender, ip), `${sender} from ${ip}`);
      seen.add(got);
    }
    assert.ok(seen.size >= 4, 'the cases get different verdicts');
  });

  test('SPF fail is recorded; with no DMARC policy and clean headers it is not enough for spam', async () => {
    const r = await transact(rig.port, 'someone@lax.example', [agent.email], await buildMessage({ from: 'someone@lax.example', to: agent.email, subject: 'Lax' }));
    assert.equal(r.data?.code, 250);
    const row = (await storedMessages(rig.app, agent.id)).find((m) => m.subject === 'Lax');
    assert.match(row?.auth_results ?? '', /spf=fail/);
    assert.equal(row?.is_spam, 0);
    assert.equal(row?.spam_score, 3.5);
  });

  test('DMARC fail with p=reject: stored in the spam folder, is_spam, logged as message.received.spam', async () => {
    const r = await transact(rig.port, 'ceo@strict.example', [agent.email], await buildMessage({ from: 'CEO <ceo@strict.example>', to: agent.email, subject: 'Wire transfer' }));
    assert.equal(r.data?.code, 250, 'spam is stored, not refused');
    const row = (await storedMessages(rig.app, agent.id)).find((m) => m.subject === 'Wire transfer');
    assert.ok(row);
    assert.equal(row.is_spam, 1);
    assert.equal(row.spam_score, 9.5);
    assert.match(row.auth_results ?? '', /spf=fail .*dmarc=fail/);
    assert.equal(await folderRoleOf(rig.app, row), 'spam');
    const log = rig.logs.accepted.at(-1);
    assert.equal(log?.event_type, 'message.received.spam');
    assert.equal(log?.is_spam, 1);
    // The Mailbox API shows it in the spam folder and not in the inbox.
    const inbox = await rig.app.api('GET', '/api/v1/mailbox/messages?folder_id=inbox&limit=100', { token: agent.key });
    assert.equal(inbox.status, 200, inbox.text);
    assert.ok(!inbox.body.data.some((m: { id: string }) => m.id === row.id));
  });

  test('header rules alone can reach the threshold (no auth problem)', async () => {
    const raw = Buffer.from('From: "support@bank.example" <promo@cheap.example>\r\nReply-To: claims@elsewhere.example\r\nTo: agent@agents.mailmux.test\r\nSubject: YOU HAVE WON A PRIZE\r\n\r\nclaim now\r\n');
    const r = await transact(rig.port, 'promo@cheap.example', [agent.email], raw);
    assert.equal(r.data?.code, 250);
    const row = (await storedMessages(rig.app, agent.id)).find((m) => m.subject === 'YOU HAVE WON A PRIZE');
    assert.equal(row?.is_spam, 1);
    // MISSING_DATE 1 + MISSING_MESSAGE_ID 1 + SUBJECT_ALL_CAPS 1.5 + FROM_REPLYTO_DIFFER 1 + FROM_NAME_HAS_OTHER_ADDRESS 2
    assert.equal(row?.spam_score, 6.5);
  });

  test('a forged Authentication-Results in our name is removed', async () => {
    const raw = Buffer.concat([Buffer.from('Authentication-Results: mx.mailmux.test; dkim=pass header.d=bank.example\r\n'), await buildMessage({ from: 'a@lax.example', to: agent.email, subject: 'Forged AR' })]);
    await transact(rig.port, 'a@lax.example', [agent.email], raw);
    const row = (await storedMessages(rig.app, agent.id)).find((m) => m.subject === 'Forged AR');
    assert.ok(row);
    const stored = await storedRaw(rig.app, row);
    assert.doesNotMatch(stored, /header\.d=bank\.example/);
    assert.equal(stored.match(/^Authentication-Results:/gm)?.length, 1);
  });
});

interface FakeRspamd {
  url: string;
  answer: { status: number; body: unknown };
  requests: { headers: http.IncomingHttpHeaders; rawHeaders: string[]; body: string; path: string }[];
  close(): Promise<void>;
}

async function fakeRspamd(): Promise<FakeRspamd> {
  const fake: FakeRspamd = {
    url: '',
    answer: { status: 200, body: { is_skipped: false, score: 0.2, required_score: 15, action: 'no action', symbols: {} } },
    requests: [],
    close: async () => undefined,
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      fake.requests.push({ headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString('utf8'), path: req.url ?? '' });
      res.writeHead(fake.answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(fake.answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = () => new Promise((resolve) => server.close(() => resolve()));
  return fake;
}

describeEachBackend('smtp inbound spam with rspamd', (backend) => {
  let rig: SmtpRig;
  let rspamd: FakeRspamd;
  let agent: TestMailbox;
  before(async () => {
    rspamd = await fakeRspamd();
    rig = await startSmtpRig(backend, { MAILMUX_RSPAMD_URL: rspamd.url });
    agent = await createMailbox(rig.app, 'agent');
    publishTxt(rig.dns, 'strict.example', 'v=spf1 ip4:192.0.2.10 -all');
    publishTxt(rig.dns, '_dmarc.strict.example', 'v=DMARC1; p=reject');
  });
  after(async () => {
    await rig.close();
    await rspamd.close();
  });

  test('rspamd is asked with the envelope and its "no action" wins over a built-in spam score', async () => {
    const other = await createMailbox(rig.app, 'other');
    const raw = await buildMessage({ from: 'ceo@strict.example', to: agent.email, subject: 'Looks bad, is fine' });
    const r = await transact(rig.port, 'ceo@strict.example', [agent.email, other.email], raw);
    assert.equal(r.data?.code, 250);
    const req = rspamd.requests.at(-1);
    assert.equal(req?.path, '/checkv2');
    assert.equal(req?.headers.ip, '127.0.0.1');
    assert.equal(req?.headers.from, 'ceo@strict.example');
    assert.equal(req?.headers.helo, 'client.example');
    const rcpts = (req?.rawHeaders ?? []).filter((_, i, a) => i % 2 === 1 && a[i - 1]?.toLowerCase() === 'rcpt');
    assert.deepEqual(rcpts, [agent.email, other.email], 'one Rcpt header per recipient');
    assert.ok(req?.body.includes('Subject: Looks bad, is fine'));
    const row = (await storedMessages(rig.app, agent.id)).find((m) => m.subject === 'Looks bad, is fine');
    assert.equal(row?.is_spam, 0);
    assert.equal(row?.spam_score, 0.2);
    assert.equal(await folderRoleOf(rig.app, row!), 'inbox');
  });

  test('"add header" puts the message in spam with rspamd\'s score', async () => {
    rspamd.answer = { status: 200, body: { score: 7.25, required_score: 15, action: 'add header', symbols: { BAYES_SPAM: { name: 'BAYES_SPAM', score: 5 } } } };
    const r = await transact(rig.port, 'x@example.org', [agent.email], await buildMessage({ to: agent.email, subject: 'rspamd spam' }));
    assert.equal(r.data?.code, 250);
    const row = (await storedMessages(rig.app, agent.id)).find((m) => m.subject === 'rspamd spam');
    assert.equal(row?.is_spam, 1);
    assert.equal(row?.spam_score, 7.25);
    assert.equal(await folderRoleOf(rig.app, row!), 'spam');
    assert.equal(rig.logs.accepted.at(-1)?.event_type, 'message.received.spam');
  });

  test('"reject" refuses the message with 550 5.7.1 and "soft reject" defers it with 451 4.7.1', async () => {
    rspamd.answer = { status: 200, body: { score: 20, required_score: 15, action: 'reject', symbols: {} } };
    const r = await transact(rig.port, 'x@example.org', [agent.email], await buildMessage({ to: agent.email, subject: 'rspamd reject' }));
    assert.match(r.data?.last ?? '', /^550 5\.7\.1 /);
    assert.equal(rig.logs.refused.at(-1)?.reason, 'spam_rejected');
    rspamd.answer = { status: 200, body: { score: 9, required_score: 15, action: 'soft reject', symbols: {} } };
    const d = await transact(rig.port, 'x@example.org', [agent.email], await buildMessage({ to: agent.email, subject: 'rspamd defer' }));
    assert.match(d.data?.last ?? '', /^451 4\.7\.1 /);
    const subjects = (await storedMessages(rig.app, agent.id)).map((m) => m.subject);
    assert.ok(!subjects.includes('rspamd reject') && !subjects.includes('rspamd defer'));
  });

  test('rspamd failing: the built-in score decides and mail keeps flowing', async () => {
    rspamd.answer = { status: 500, body: { error: 'boom' } };
    const r = await transact(rig.port, 'ceo@strict.example', [agent.email], await buildMessage({ from: 'ceo@strict.example', to: agent.email, subject: 'fallback' }));
    assert.equal(r.data?.code, 250);
    const row = (await storedMessages(rig.app, agent.id)).find((m) => m.subject === 'fallback');
    assert.equal(row?.is_spam, 1, 'DMARC reject failure scores as spam built in');
    assert.equal(row?.spam_score, 9.5);
  });
});
