// Unit tests for the structural splitter and the header, date, Message-ID and transfer-encoding helpers under parse.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodedSize, transferDecode } from './body-parts.ts';
import { decodeHeaderBytes, paramValue, parseStructured, readHeaderBlock } from './header-block.ts';
import { parseDate, parseMessageIds, boundReferences } from './header-values.ts';
import { encodeWords } from './imap-structure.ts';
import { REFERENCES_MAX } from './limits.ts';
import { splitMime, walkEntities } from './structure.ts';
import type { MimeEntity } from './structure.ts';

const crlf = (...lines: string[]): Buffer => Buffer.from(lines.join('\r\n'), 'latin1');

test('a header block ends at the first empty line, CRLF or bare LF, and unfolds values', () => {
  const raw = Buffer.from('Subject: one\r\n two\r\nX-A:b\n\nbody');
  const block = readHeaderBlock(raw, 0, raw.length, true);
  assert.equal(block.body_start, raw.indexOf('body'));
  assert.deepEqual(block.all, [{ name: 'Subject', value: 'one two' }, { name: 'X-A', value: 'b' }]);
  assert.equal(block.fields.get('subject'), 'one two');
});

test('8-bit header bytes decode as UTF-8, else as Latin-1; NUL becomes U+FFFD', () => {
  assert.deepEqual(decodeHeaderBytes(Buffer.from('Grüße', 'utf8')), { text: 'Grüße', eightBit: 'utf8', nul: false });
  assert.deepEqual(decodeHeaderBytes(Buffer.from('Grüße', 'latin1')), { text: 'Grüße', eightBit: 'latin1', nul: false });
  assert.deepEqual(decodeHeaderBytes(Buffer.from('a\0b', 'latin1')), { text: 'a\ufffdb', eightBit: 'none', nul: true });
});

test('structured values: quoting, comments and RFC 2231 continuations with charsets', () => {
  assert.deepEqual(parseStructured('Text/Plain (comment); charset="utf-8"; name="a;b.txt"'), { value: 'text/plain', params: [['charset', 'utf-8'], ['name', 'a;b.txt']] });
  const params = parseStructured("attachment; filename*0*=UTF-8''%E2%82; filename*1*=%AC%20rate.txt").params;
  assert.equal(paramValue(params, 'filename'), '€ rate.txt');
  assert.equal(paramValue(parseStructured("a; title*=iso-8859-1'en'caf%E9").params, 'title'), 'café');
  assert.equal(paramValue(parseStructured('a; name=plain').params, 'name'), 'plain');
});

test('the splitter numbers sections and finds byte offsets', () => {
  const raw = crlf('Content-Type: multipart/mixed; boundary=x', '', 'pre', '--x', '', 'one', '--x', 'Content-Type: text/html', '', '<b>two</b>', '--x--', 'post');
  const { root, problems } = splitMime(raw);
  assert.deepEqual(problems, []);
  const [a, b] = root.children as [MimeEntity, MimeEntity];
  assert.deepEqual([a.section, raw.subarray(a.body_start, a.body_end).toString()], ['1', 'one']);
  assert.deepEqual([b.section, b.subtype, raw.subarray(b.header_start, b.body_start).toString()], ['2', 'html', 'Content-Type: text/html\r\n\r\n']);
  assert.equal(raw.subarray(b.body_start, b.body_end).toString(), '<b>two</b>');
});

test('multipart/digest parts default to message/rfc822 and are opened', () => {
  const raw = crlf('Content-Type: multipart/digest; boundary=d', '', '--d', '', 'Subject: inner', '', 'hi', '--d--');
  const { root } = splitMime(raw);
  const part = root.children[0] as MimeEntity;
  assert.deepEqual([part.type, part.subtype, part.message?.fields.get('subject')], ['message', 'rfc822', 'inner']);
  assert.deepEqual(walkEntities(root).map((e) => e.section), ['', '1', '1']);
});

test('an encoded message/rfc822 stays opaque', () => {
  const raw = crlf('Content-Type: message/rfc822', 'Content-Transfer-Encoding: base64', '', 'U3ViamVjdDogeA==');
  const { root, problems } = splitMime(raw);
  assert.equal(root.opaque, true);
  assert.match(problems[0] ?? '', /^message_encoded/);
});

test('decoded sizes are counted without decoding', () => {
  const part = (encoding: string, body: string): [Buffer, MimeEntity] => {
    const raw = Buffer.from(body, 'latin1');
    return [raw, { encoding, body_start: 0, body_end: raw.length } as MimeEntity];
  };
  assert.deepEqual(decodedSize(...part('base64', 'SGVs\r\nbG8=\r\n')), { size: 5, damaged: false });
  assert.deepEqual(decodedSize(...part('base64', 'SGVs*bG8=')), { size: 5, damaged: true });
  assert.deepEqual(decodedSize(...part('quoted-printable', 'a=3Db=\r\nc')), { size: 4, damaged: false });
  assert.deepEqual(decodedSize(...part('quoted-printable', 'a=ZZ')), { size: 4, damaged: true });
  assert.deepEqual(decodedSize(...part('7bit', 'abc\r\n')), { size: 5, damaged: false });
});

test('transfer decoding is lenient', () => {
  assert.equal(transferDecode(Buffer.from('SGVs bG8=\r\nIHdv!cmxk'), 'base64').toString(), 'Hello world');
  assert.equal(transferDecode(Buffer.from('caf=C3=A9 =\r\nok =ZZ'), 'quoted-printable').toString(), 'café ok =ZZ');
});

test('RFC 5322 dates, obsolete zones and nonsense', () => {
  assert.equal(parseDate('Tue, 1 Jul 2003 10:52:37 +0200'), '2003-07-01T08:52:37.000Z');
  assert.equal(parseDate('1 Jul 03 10:52 PDT'), '2003-07-01T17:52:00.000Z');
  assert.equal(parseDate('Sat, 8 Mar 2025 07:05:09 +0100 (CET)'), '2025-03-08T06:05:09.000Z');
  assert.equal(parseDate('2025-03-08T07:05:09Z'), '2025-03-08T07:05:09.000Z');
  for (const bad of ['yesterday', '31 Feb 2025 10:00:00 +0000', '1 Foo 2025 10:00 +0000', '1 Jan 2025 25:00 +0000', undefined]) assert.equal(parseDate(bad), null, String(bad));
});

test('Message-IDs lose their brackets; References keep the root and the newest', () => {
  assert.deepEqual(parseMessageIds('<a@b> (comment) <c@d>'), ['a@b', 'c@d']);
  assert.deepEqual(parseMessageIds('bare@id'), ['bare@id']);
  const ids = Array.from({ length: REFERENCES_MAX + 50 }, (_, i) => `m${i}@x`);
  const kept = boundReferences(ids);
  assert.equal(kept.length, REFERENCES_MAX);
  assert.deepEqual([kept[0], kept[1], kept.at(-1)], ['m0@x', `m${ids.length - REFERENCES_MAX + 1}@x`, `m${ids.length - 1}@x`]);
});

test('envelope strings are wrapped in encoded words only when they are not ASCII', () => {
  assert.equal(encodeWords('Plain'), 'Plain');
  assert.equal(encodeWords('Grüße'), '=?UTF-8?B?R3LDvMOfZQ==?=');
  const long = encodeWords('é'.repeat(60));
  assert.ok(long.split(' ').every((w) => w.length <= 75));
});
