// The pure parts of inbound mail: trace headers, the built-in spam rules, reply texts, the
// incoming-log date bounds and the SMTP configuration variables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { defaultInspectWorkers, loadConfig } from '../../src/config/config.ts';
import { prependHeaders, receivedHeader, rfc5322Date, stripOwnAuthResults } from '../../src/protocols/smtp/trace.ts';
import { recipientReply, overQuota, ENHANCED_PREFIX } from '../../src/protocols/smtp/replies.ts';
import { builtinRules, headerFacts, headerFactsFromParse, scoreOf, SPAM_RULES } from '../../src/services/mail/spam.ts';
import { parseMessage } from '../../src/mime/parse.ts';
import { dateBound, incomingLogView } from '../../src/services/mail/incoming-logs.ts';

const NOW = Date.parse('2026-11-20T10:00:00Z');
const clean = { spf: 'pass', dkim: 'pass', dmarc: { result: 'pass', policy: 'reject' } };

function msg(headers: string, body = 'hello\r\n'): Buffer {
  return Buffer.from(`${headers.trim().replace(/\n/g, '\r\n')}\r\n\r\n${body}`, 'utf8');
}

const GOOD = msg(`From: Alice <alice@example.org>
To: agent@agents.mailmux.test
Subject: Quarterly numbers
Date: Fri, 20 Nov 2026 09:00:00 +0000
Message-ID: <a1@example.org>`);

test('a well-formed, authenticated message hits no rule', () => {
  assert.deepEqual(builtinRules(headerFacts(GOOD), clean, NOW), []);
});

test('the header facts of the parse (as inspection made it, trace headers on top) are those of the raw message', async () => {
  const twice = msg(`From: =?utf-8?Q?J=C3=BCrgen?= <j@example.org>
Subject: first
 folded
Subject: SECOND SUBJECT IN CAPITALS
Reply-To: other@elsewhere.example
Date: Fri, 20 Nov 2026 09:00:00 +0000
Message-ID: <t@example.org>`);
  const shouty = msg(`From: "support@bank.example" <x@cheap.example>
Subject: =?utf-8?Q?URGENT_ACTION_REQUIRED!!!?=
Date: Sat, 28 Nov 2026 09:00:00 +0000
Message-ID: <b@cheap.example>`);
  for (const raw of [GOOD, twice, shouty]) {
    const stored = prependHeaders(raw, ['Authentication-Results: mx.example; spf=none', 'Received: from a by b; Fri, 20 Nov 2026 09:00:00 +0000']);
    const fromParse = headerFactsFromParse(await parseMessage(stored));
    assert.ok(fromParse, 'a clean parse gives the facts');
    assert.deepEqual(fromParse, headerFacts(raw));
  }
  assert.equal(headerFactsFromParse(await parseMessage(twice))?.subject, 'first folded', 'the first Subject counts, unfolded');
  // A parse that found something wrong (here: no From, no Date) is not used: the raw is read again.
  assert.equal(headerFactsFromParse(await parseMessage(msg('To: agent@agents.mailmux.test'))), null);
});

test('authentication failures carry their documented weights', () => {
  const facts = headerFacts(GOOD);
  assert.deepEqual(builtinRules(facts, { spf: 'fail', dkim: 'fail', dmarc: { result: 'fail', policy: 'reject' } }, NOW), ['SPF_FAIL', 'DKIM_FAIL', 'DMARC_FAIL_REJECT']);
  assert.deepEqual(builtinRules(facts, { spf: 'softfail', dkim: 'none', dmarc: { result: 'fail', policy: 'quarantine' } }, NOW), ['SPF_SOFTFAIL', 'DMARC_FAIL_QUARANTINE']);
  assert.deepEqual(builtinRules(facts, { spf: 'neutral', dkim: 'none', dmarc: { result: 'fail', policy: 'none' } }, NOW), ['DMARC_FAIL_NONE']);
  // DMARC reject or quarantine alone reaches the default threshold of 5.
  assert.ok(SPAM_RULES.DMARC_FAIL_REJECT.score >= 5 && SPAM_RULES.DMARC_FAIL_QUARANTINE.score >= 5);
  assert.equal(scoreOf(['SPF_FAIL', 'SUBJECT_ALL_CAPS']), 5);
});

test('header rules: missing fields, caps subject, Reply-To and display-name spoofing, future dates', () => {
  const bare = msg('To: agent@agents.mailmux.test');
  assert.deepEqual(builtinRules(headerFacts(bare), null, NOW), ['MISSING_FROM', 'MISSING_DATE', 'MISSING_MESSAGE_ID', 'MISSING_SUBJECT']);
  const shouty = msg(`From: "support@bank.example" <x@cheap.example>
Reply-To: claims@elsewhere.example
Subject: =?utf-8?Q?URGENT_ACTION_REQUIRED!!!?=
Date: Fri, 20 Nov 2026 09:00:00 +0000
Message-ID: <b@cheap.example>`);
  assert.deepEqual(builtinRules(headerFacts(shouty), clean, NOW), ['SUBJECT_ALL_CAPS', 'FROM_REPLYTO_DIFFER', 'FROM_NAME_HAS_OTHER_ADDRESS']);
  const future = msg(`From: a@example.org
Subject: Hi
Date: Sat, 28 Nov 2026 09:00:00 +0000
Message-ID: <c@example.org>`);
  assert.deepEqual(builtinRules(headerFacts(future), clean, NOW), ['DATE_IN_FUTURE']);
  // Short capitalised subjects ("RE: OK") are normal.
  const short = msg(`From: a@example.org
Subject: RE: OK
Date: Fri, 20 Nov 2026 09:00:00 +0000
Message-ID: <d@example.org>`);
  assert.deepEqual(builtinRules(headerFacts(short), clean, NOW), []);
});

test('Received header names the client, us, the protocol and one recipient only', () => {
  const h = receivedHeader({
    helo: 'client.example', clientHostname: '[127.0.0.1]', ip: '127.0.0.1', byHost: 'mx.mailmux.test', protocol: 'ESMTPS',
    queueId: 'q1', tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' }, recipient: 'agent@agents.mailmux.test', date: new Date(NOW),
  });
  assert.equal(h, [
    'Received: from client.example ([127.0.0.1])',
    '\tby mx.mailmux.test (Mailmux) with ESMTPS id q1',
    '\t(version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384)',
    '\tfor <agent@agents.mailmux.test>;',
    '\tFri, 20 Nov 2026 10:00:00 +0000',
  ].join('\r\n'));
  const many = receivedHeader({ helo: 'evil\r\nX-Injected: 1', clientHostname: 'host.example', ip: '192.0.2.1', byHost: 'mx', protocol: 'ESMTP', queueId: 'q2', tls: null, recipient: null, date: new Date(NOW) });
  assert.match(many, /^Received: from evilX-Injected:1 \(host\.example \[192\.0\.2\.1\]\)\r\n\tby mx \(Mailmux\) with ESMTP id q2;\r\n/);
  assert.equal(rfc5322Date(new Date(NOW)), 'Fri, 20 Nov 2026 10:00:00 +0000');
});

test('our own Authentication-Results are removed, others kept byte for byte', () => {
  const raw = Buffer.from([
    'Authentication-Results: MX.mailmux.test;',
    '\tdkim=pass header.d=bank.example',
    'Authentication-Results: other.example; spf=pass',
    'Subject: caf\xe9',
    'Authentication-Results: mx.mailmux.test (forged); dmarc=pass',
    '',
    'Authentication-Results: mx.mailmux.test; in the body stays',
    '',
  ].join('\r\n'), 'latin1');
  const out = stripOwnAuthResults(raw, 'mx.mailmux.test').toString('latin1');
  assert.equal(out, ['Authentication-Results: other.example; spf=pass', 'Subject: caf\xe9', '', 'Authentication-Results: mx.mailmux.test; in the body stays', ''].join('\r\n'));
  const untouched = Buffer.from('Subject: x\r\n\r\nbody');
  assert.equal(stripOwnAuthResults(untouched, 'mx.mailmux.test'), untouched);
  assert.equal(prependHeaders(untouched, ['A: 1', 'B: 2\r\n 3']).toString(), 'A: 1\r\nB: 2\r\n 3\r\nSubject: x\r\n\r\nbody');
});

test('reply texts carry their RFC 3463 codes', () => {
  const cases = [
    [recipientReply('unknown_recipient', 'temporary'), 550, '5.1.1'],
    [recipientReply('mailbox_inactive', 'temporary'), 550, '5.2.1'],
    [recipientReply('sender_filtered', 'temporary'), 550, '5.7.1'],
    [recipientReply('relay_denied', 'temporary'), 550, '5.7.1'],
    [overQuota('temporary'), 452, '4.2.2'],
    [overQuota('permanent'), 552, '5.2.2'],
  ] as const;
  for (const [reply, code, enhanced] of cases) {
    assert.equal(reply.responseCode, code);
    assert.ok(reply.message.startsWith(`${enhanced} `));
    assert.match(reply.message, ENHANCED_PREFIX);
  }
});

test('log date bounds: date-only values are whole UTC days; bad values are 400', () => {
  assert.equal(dateBound('2026-11-20', 'from', 'from_date'), '2026-11-20T00:00:00.000Z');
  assert.equal(dateBound('2026-11-20', 'to', 'to_date'), '2026-11-21T00:00:00.000Z');
  assert.equal(dateBound('2026-11-20T10:00:00+02:00', 'from', 'from_date'), '2026-11-20T08:00:00.000Z');
  assert.equal(dateBound('2026-11-20T10:00:00Z', 'to', 'to_date'), '2026-11-20T10:00:00.001Z');
  for (const bad of ['yesterday', '2026-13-45', '1700000000']) assert.throws(() => dateBound(bad, 'from', 'from_date'), /from_date/);
  const view = incomingLogView({
    id: 'ilog_x', team_id: 't', mailbox_id: 'mbx_1', mailbox_email: 'a@b.test', event_type: 'message.received.spam', is_spam: 1, status: 'accepted', reason: null,
    from_email: null, to_emails: '["a+x@b.test"]', subject: null, rfc_message_id: 'id@x', size_bytes: 10, received_at: '2026-11-20T10:59:59.999Z',
  });
  assert.equal(view.billing_bucket_start, '2026-11-20T10:00:00.000Z');
  assert.deepEqual([view.amount, view.unit_amount, view.message_id_kind, view.is_spam], ['0', '0', 'rfc5322', true]);
});

test('SMTP configuration: defaults, validation, TLS files set together', () => {
  const c = loadConfig({});
  assert.deepEqual(c.smtp, { maxMessageBytes: 26214400, maxRecipients: 100, maxCommands: 1000, maxConnections: 100, idleTimeoutSeconds: 300, quotaReply: 'temporary', inspectWorkers: defaultInspectWorkers(availableParallelism()) });
  // Two cores or fewer: on the event loop; more: the spare cores, at most four threads.
  assert.deepEqual([1, 2, 3, 4, 8, 64].map(defaultInspectWorkers), [0, 0, 2, 3, 4, 4]);
  assert.equal(loadConfig({ MAILMUX_SMTP_INSPECT_WORKERS: '0' }).smtp.inspectWorkers, 0);
  assert.throws(() => loadConfig({ MAILMUX_SMTP_INSPECT_WORKERS: 'two' }), /MAILMUX_SMTP_INSPECT_WORKERS/);
  assert.equal(c.spamThreshold, 5);
  assert.equal(c.rspamdUrl, null);
  assert.equal(loadConfig({ MAILMUX_SPAM_THRESHOLD: '7.5', MAILMUX_RSPAMD_URL: 'http://127.0.0.1:11333/' }).rspamdUrl, 'http://127.0.0.1:11333');
  assert.equal(loadConfig({ MAILMUX_SPAM_THRESHOLD: '7.5' }).spamThreshold, 7.5);
  assert.throws(() => loadConfig({ MAILMUX_SMTP_QUOTA_REPLY: 'maybe' }), /MAILMUX_SMTP_QUOTA_REPLY/);
  assert.throws(() => loadConfig({ MAILMUX_SMTP_MAX_RECIPIENTS: '0' }), /at least 1/);
  assert.throws(() => loadConfig({ MAILMUX_TLS_CERT_FILE: '/x.pem' }), /set together/);
});
