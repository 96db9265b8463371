// Hostile MIME: parseMessage never throws, does bounded work and reports what it worked around.
// Committed fixtures are test/fixtures/eml/hostile/<name>.eml; large ones come from
// ./hostile-generators.ts. Each has a golden <name>.json with the key fields (subset match) and a
// `derived` block (part count, deepest section, header and attachment counts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import fc from 'fast-check';
import { parseMessage } from '../../src/mime/parse.ts';
import type { ParsedMessage } from '../../src/mime/parse.ts';
import { HEADER_FIELDS_MAX, MIME_DEPTH_MAX, MIME_PARTS_MAX, PREVIEW_MAX_CHARS, PROBLEMS_MAX } from '../../src/mime/limits.ts';
import { generated } from './hostile-generators.ts';
import { PARSE_FIXTURES, assertStructureInvariants, assertSubset } from './mime-golden.ts';

const dir = new URL('../fixtures/eml/hostile/', import.meta.url);
const goldens = readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
// Generous: the slowest fixture (1.2 MB of headers) parses in ~50 ms on a laptop.
const TIME_BOUND_MS = 3000;

function load(name: string): Buffer {
  const file = new URL(`${name}.eml`, dir);
  if (existsSync(file)) return readFileSync(file);
  const generate = generated[name];
  assert.ok(generate, `${name}.json has neither an .eml nor a generator`);
  return generate();
}

function derived(p: ParsedMessage): Record<string, number> {
  return {
    parts: p.imap.parts.length,
    deepest_section: Math.max(...p.imap.parts.map((x) => (x.section === '' ? 0 : x.section.split('.').length))),
    headers: p.headers.length,
    attachments: p.attachments.length,
  };
}

/** What must hold for any input, however broken. */
function assertSane(raw: Buffer, p: ParsedMessage): void {
  assertStructureInvariants(raw, p);
  assert.equal(p.size_bytes, raw.length);
  assert.ok(p.problems.length <= PROBLEMS_MAX);
  assert.ok(p.headers.length <= HEADER_FIELDS_MAX);
  assert.ok(p.preview === null || (p.preview.length > 0 && p.preview.length <= PREVIEW_MAX_CHARS + 1));
  // Everything lands in PostgreSQL text columns: no NUL anywhere in the JSON.
  assert.ok(!JSON.stringify(p).includes('\\u0000'), 'no NUL in any field');
  for (const a of p.attachments) assert.ok(p.imap.parts.some((x) => x.section === a.part_id), `attachment ${a.part_id} is addressable`);
}

test('every hostile case in the brief has a golden', () => {
  const expected = [
    'broken-boundary', 'missing-boundary', 'unclosed-boundary', 'bad-base64', 'bad-quoted-printable', 'unknown-charset',
    'header-8bit-utf8', 'header-8bit-latin1', 'missing-headers', 'huge-header', 'deep-nesting', 'deep-messages', 'nul-bytes',
    'headers-only', 'lf-only', 'empty', 'many-parts', 'long-boundary',
  ];
  for (const name of expected) assert.ok(goldens.includes(name), name);
});

for (const name of goldens) {
  test(`hostile golden: ${name}`, async () => {
    const raw = load(name);
    const { derived: counts, ...golden } = JSON.parse(readFileSync(new URL(`${name}.json`, dir), 'utf8')) as { derived: Record<string, number> } & Record<string, unknown>;
    const started = performance.now();
    const parsed = await parseMessage(raw);
    const elapsed = performance.now() - started;
    assert.ok(elapsed < TIME_BOUND_MS, `${name} took ${elapsed.toFixed(0)} ms`);
    assertSubset(parsed, golden);
    assert.deepEqual(derived(parsed), counts);
    assertSane(raw, parsed);
  });
}

test('limits hold on the generated cases', async () => {
  const deep = await parseMessage(load('deep-nesting'));
  assert.ok(Math.max(...deep.imap.parts.map((p) => p.section.split('.').length)) <= MIME_DEPTH_MAX);
  const many = await parseMessage(load('many-parts'));
  assert.ok(many.imap.parts.length <= MIME_PARTS_MAX);
  const huge = await parseMessage(load('huge-header'));
  const kept = huge.headers.reduce((n, h) => n + h.value.length, 0);
  assert.ok(kept <= 256 * 1024 + 64 * 1024, `kept ${kept} header bytes`);
  assert.equal(huge.from?.email, 'sender@example.com', 'fields after the junk are still read');
});

test('LF-only and CRLF copies of a message parse to the same fields', async () => {
  const lf = load('lf-only');
  const crlf = Buffer.from(lf.toString('latin1').replace(/\n/g, '\r\n'), 'latin1');
  const [a, b] = await Promise.all([parseMessage(lf), parseMessage(crlf)]);
  for (const key of ['from', 'subject', 'text_body', 'preview', 'problems'] as const) assert.deepEqual(a[key], b[key], key);
  // Decoded sizes differ by the CRs: a 7bit attachment's bytes are its line breaks as sent.
  assert.deepEqual(a.attachments.map(({ size_bytes: _, ...rest }) => rest), b.attachments.map(({ size_bytes: _, ...rest }) => rest));
  assert.deepEqual(a.imap.parts.map((p) => p.section), b.imap.parts.map((p) => p.section));
});

test('bytes 10 MB long in one line, in LF floods and in fake delimiters stay fast', async () => {
  const head = 'From: a@example.com\r\nSubject: flood\r\n';
  const cases = [
    Buffer.from(`${head}X-Long: ${'a'.repeat(10_000_000)}`),
    Buffer.from(`${head}\r\n${'\n'.repeat(10_000_000)}`),
    Buffer.from(`${head}Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n${'--bx\r\n'.repeat(1_000_000)}--b--\r\n`),
  ];
  for (const raw of cases) {
    const started = performance.now();
    const parsed = await parseMessage(raw);
    assert.ok(performance.now() - started < 5000);
    assertSane(raw, parsed);
  }
});

test('input that is not even bytes resolves with an internal_error problem', async () => {
  const parsed = await parseMessage(undefined as unknown as Buffer);
  assert.match(parsed.problems[0] ?? '', /^internal_error/);
  assert.equal(parsed.size_bytes, 0);
  assert.equal(parsed.imap.parts.length, 2);
  const fromArray = await parseMessage(new Uint8Array(Buffer.from('Subject: typed array\r\n\r\nhi')) as Buffer);
  assert.deepEqual([fromArray.subject, fromArray.text_body], ['typed array', 'hi']);
});

test('a preview of megabytes of blanks costs one pass', async () => {
  const raw = Buffer.from(`Subject: blanks\r\n\r\n${' \t\r\n'.repeat(3_000_000)}${'word '.repeat(100)}`);
  const started = performance.now();
  const parsed = await parseMessage(raw);
  assert.ok(performance.now() - started < 5000);
  assert.equal(parsed.preview?.length, PREVIEW_MAX_CHARS - 1);
  assert.ok(parsed.preview?.startsWith('word word'));
});

const fixtures = [
  ...PARSE_FIXTURES.map((f) => readFileSync(new URL(`../fixtures/eml/${f}.eml`, import.meta.url))),
  ...goldens.filter((g) => existsSync(new URL(`${g}.eml`, dir))).map((g) => load(g)),
];

test('mutated fixtures never throw and keep the structural invariants', async () => {
  const edit = fc.record({ at: fc.nat(), cut: fc.nat({ max: 12 }), insert: fc.oneof(fc.uint8Array({ maxLength: 8 }), fc.constantFrom(...['\r\n', '\n\n', '--', '=', '=?', '"', ';', '\r\n\r\n', 'Content-Type: multipart/mixed; boundary=b\r\n', '\r\n--b\r\n', '\r\n--b--'].map((s) => Buffer.from(s)))) });
  await fc.assert(
    fc.asyncProperty(fc.nat({ max: fixtures.length - 1 }), fc.array(edit, { maxLength: 6 }), async (index, edits) => {
      let raw = fixtures[index] as Buffer;
      for (const e of edits) {
        const at = raw.length === 0 ? 0 : e.at % (raw.length + 1);
        raw = Buffer.concat([raw.subarray(0, at), Buffer.from(e.insert), raw.subarray(Math.min(raw.length, at + e.cut))]);
      }
      assertSane(raw, await parseMessage(raw));
    }),
    { numRuns: 300 },
  );
});

test('random bytes never throw', async () => {
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), async (bytes) => {
      const raw = Buffer.from(bytes);
      assertSane(raw, await parseMessage(raw));
    }),
    { numRuns: 200 },
  );
});
