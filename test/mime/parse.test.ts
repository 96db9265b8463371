// Golden tests for parseMessage on ordinary mail: test/fixtures/eml/<name>.eml against <name>.json
// (key fields, IMAP envelope, BODYSTRUCTURE and offsets, plus hand-written raw slices per section).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { crlfToLf, decodeText, decodeTextViaPostalMime, directDecoder, leaves } from '../../src/mime/body-parts.ts';
import { splitMime } from '../../src/mime/structure.ts';
import { parseMessage } from '../../src/mime/parse.ts';
import { threadKeys } from '../../src/mime/threading.ts';
import { PARSE_FIXTURES, assertSlices, assertStructureInvariants, assertSubset } from './mime-golden.ts';
import type { Slices } from './mime-golden.ts';

const dir = new URL('../fixtures/eml/', import.meta.url);
const names = PARSE_FIXTURES;

for (const name of names) {
  test(`golden: ${name}`, async () => {
    const raw = readFileSync(new URL(`${name}.eml`, dir));
    const { slices, ...golden } = JSON.parse(readFileSync(new URL(`${name}.json`, dir), 'utf8')) as { slices?: Slices } & Record<string, unknown>;
    const started = performance.now();
    const parsed = await parseMessage(raw);
    assert.ok(performance.now() - started < 2000, 'parses quickly');
    assertSubset(parsed, golden);
    assert.equal(parsed.size_bytes, raw.length);
    assertStructureInvariants(raw, parsed);
    assert.ok(slices && Object.keys(slices).length > 0, 'golden lists raw slices');
    assertSlices(raw, parsed, slices);
  });
}

test('headers keep order and raw unfolded values', async () => {
  const parsed = await parseMessage(readFileSync(new URL('simple-text.eml', dir)));
  assert.deepEqual(parsed.headers.slice(0, 3), [
    { name: 'Return-Path', value: '<ann@example.com>' },
    { name: 'Received', value: 'from mail.example.com (mail.example.com [192.0.2.10])\tby mx.example.org with ESMTPS id 4F2A1C0001\tfor <bob@example.org>; Mon, 03 Mar 2025 09:15:02 +0000' },
    { name: 'From', value: 'Ann Example <ann@example.com>' },
  ]);
  const encoded = await parseMessage(readFileSync(new URL('encoded-words.eml', dir)));
  assert.equal(encoded.headers.find((h) => h.name === 'Subject')?.value, '=?UTF-8?B?UmU6IMOcYmVyc2ljaHQg8J+Tiw==?= =?UTF-8?Q?_und_mehr?=');
});

test('the references chain yields thread keys, parent first', async () => {
  const parsed = await parseMessage(readFileSync(new URL('references-chain.eml', dir)));
  assert.deepEqual(threadKeys(parsed), {
    message_ids: ['msg-3@example.com', 'msg-2@example.org', 'msg-1@example.com'],
    subject_key: 'q3 planning',
    is_reply_or_forward: true,
  });
});

test('a top-level message/rfc822 body is numbered 1, its parts 1.1 ...', async () => {
  const inner = 'From: a@example.com\r\nSubject: inner\r\nContent-Type: multipart/mixed; boundary=i\r\n\r\n--i\r\n\r\none\r\n--i\r\n\r\ntwo\r\n--i--\r\n';
  const raw = Buffer.from(`From: b@example.com\r\nSubject: outer\r\nContent-Type: message/rfc822\r\n\r\n${inner}`);
  const parsed = await parseMessage(raw);
  assert.deepEqual(parsed.imap.parts.map((p) => p.section), ['', '1', '1.1', '1.2']);
  assertStructureInvariants(raw, parsed);
  const one = parsed.imap.parts.find((p) => p.section === '1');
  assert.equal(raw.subarray(one?.body_start, one?.message_body_start ?? 0).toString(), inner.slice(0, inner.indexOf('--i')));
  assert.equal(parsed.attachments[0]?.content_type, 'message/rfc822');
});

test('text parts in UTF-8, ASCII and Latin-1 decode directly exactly as through postal-mime', async () => {
  const dirs = ['test/fixtures/eml', 'test/fixtures/eml/hostile', 'test/fixtures/clean'];
  const raws: Buffer[] = [];
  for (const dir of dirs) for (const f of readdirSync(dir)) if (f.endsWith('.eml')) raws.push(readFileSync(`${dir}/${f}`));
  // Bytes the fixtures may lack: a BOM, invalid UTF-8 (also cut off right before a CRLF), 8-bit bytes under an ASCII label, bare CRs, NUL.
  const bodies = [Buffer.from([0xef, 0xbb, 0xbf, 0x68, 0x69, 0x0d, 0x0a]), Buffer.from([0x61, 0xc3, 0x28, 0xe2, 0x82, 0x0d, 0x62, 0x00, 0x0a]), Buffer.from('caf\xe9 \xa4\x80\x9f\r\n\r\nend', 'latin1'), Buffer.from([0xe2, 0x82, 0x0d, 0x0a, 0x41, 0xc3, 0x0d, 0x0a, 0xf0, 0x9f, 0x98, 0x0d, 0x0a])];
  for (const charset of ['', 'utf-8', 'UTF8', ' us-ascii ', 'iso-8859-1', 'windows-1252', 'latin1']) {
    for (const [i, body] of bodies.entries()) {
      for (const cte of ['8bit', 'base64', 'quoted-printable']) {
        const encoded = cte === 'base64' ? Buffer.from(body.toString('base64')) : cte === 'quoted-printable' ? Buffer.from([...body].map((b) => (b >= 33 && b <= 126 && b !== 61 ? String.fromCharCode(b) : `=${b.toString(16).toUpperCase().padStart(2, '0')}`)).join('')) : body;
        const ct = charset === '' ? 'text/plain' : `text/plain; charset="${charset}"`;
        raws.push(Buffer.concat([Buffer.from(`Subject: ${i}\r\nContent-Type: ${ct}\r\nContent-Transfer-Encoding: ${cte}\r\n\r\n`), encoded]));
      }
    }
  }
  let direct = 0;
  for (const raw of raws) {
    for (const leaf of leaves(splitMime(raw).root)) {
      if (leaf.type !== 'text' || !directDecoder(leaf)) continue;
      direct++;
      assert.equal(await decodeText(raw, leaf), await decodeTextViaPostalMime(raw, leaf));
    }
  }
  assert.ok(direct > 100, `${direct} parts compared`);
});

test('CRLF to LF on bytes: every CRLF becomes LF; a lone CR or LF stays', () => {
  const cases: [string, string][] = [
    ['', ''],
    ['a', 'a'],
    ['\r\n', '\n'],
    ['a\r\nb\r\n', 'a\nb\n'],
    ['\r\r\n\n\r', '\r\n\n\r'],
    ['x\ry\nz\r\n\r\n', 'x\ry\nz\n\n'],
    ['\r\n'.repeat(1000) + 'end', '\n'.repeat(1000) + 'end'],
  ];
  for (const [input, expected] of cases) assert.equal(crlfToLf(Buffer.from(input, 'latin1')).toString('latin1'), expected, JSON.stringify(input));
  // Random bytes against the obvious definition.
  for (let k = 0; k < 200; k++) {
    const bytes = Buffer.from(Array.from({ length: (k * 7) % 300 }, (_, i) => [0x0d, 0x0a, 0x41, 0xff][(i * 31 + k * 17 + ((i * i) % 7)) % 4]!));
    assert.equal(crlfToLf(bytes).toString('latin1'), bytes.toString('latin1').replace(/\r\n/g, '\n'));
  }
});
