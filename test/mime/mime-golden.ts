// Shared checks for the parse golden tests: subset matching against <name>.json, slice checks
// (the bytes at a part's offsets are that part's raw encoded bytes) and structural invariants that
// tie the IMAP BODYSTRUCTURE to the part offsets and the multipart delimiters.
import assert from 'node:assert/strict';
import type { ImapBodyStructure, ImapPartOffsets, ParsedMessage } from '../../src/mime/parse.ts';

/** Normal fixtures in test/fixtures/eml/, listed rather than globbed: other suites may keep .eml files there too. */
export const PARSE_FIXTURES = [
  'simple-text', 'multipart-alternative', 'mixed-pdf', 'inline-image', 'attached-message', 'encoded-words', 'iso-2022-jp', 'references-chain',
];

/** Objects in `expected` are matched key by key (extra keys in `actual` are fine); everything else must be equal. */
export function assertSubset(actual: unknown, expected: unknown, path = '$'): void {
  if (expected !== null && typeof expected === 'object' && !Array.isArray(expected)) {
    assert.ok(actual !== null && typeof actual === 'object', `${path}: expected an object`);
    for (const [key, value] of Object.entries(expected)) assertSubset((actual as Record<string, unknown>)[key], value, `${path}.${key}`);
    return;
  }
  assert.deepEqual(actual, expected, path);
}

export type Slices = Record<string, { header?: string; mime?: string; body?: string; text?: string }>;

const text = (raw: Buffer, start: number, end: number): string => raw.subarray(start, end).toString('latin1');

/** Each expected slice is written by hand from the .eml, so this checks the offsets independently of the parser. */
export function assertSlices(raw: Buffer, parsed: ParsedMessage, slices: Slices): void {
  for (const [section, expected] of Object.entries(slices)) {
    const part = parsed.imap.parts.find((p) => p.section === section);
    assert.ok(part, `no offsets for section "${section}"`);
    const header = text(raw, part.header_start, part.body_start);
    const body = text(raw, part.body_start, part.body_end);
    if (expected.header !== undefined) {
      // Section '' has the message header; a message/rfc822 part has the encapsulated one.
      const embedded = part.message_body_start !== null ? text(raw, part.body_start, part.message_body_start) : header;
      assert.equal(section === '' ? header : embedded, expected.header, `${section}.HEADER`);
    }
    if (expected.mime !== undefined) assert.equal(header, expected.mime, `${section}.MIME`);
    if (expected.body !== undefined) assert.equal(body, expected.body, `BODY[${section}]`);
    if (expected.text !== undefined) {
      assert.ok(part.message_body_start !== null, `${section} is not an opened message`);
      assert.equal(text(raw, part.message_body_start, part.body_end), expected.text, `${section}.TEXT`);
    }
  }
}

/** `framed_by`: boundary of the multipart this node is a direct child of; `enclosing`: every enclosing boundary, innermost first. */
type Walked = { section: string; node: ImapBodyStructure; framed_by: string | null; enclosing: string[] };

const boundaryOf = (body: ImapBodyStructure): string | null => ('parts' in body ? (body.params.find(([k]) => k === 'boundary')?.[1] ?? null) : null);

/** Sections of every node in IMAP numbering (RFC 3501 §6.4.5). */
function sections(body: ImapBodyStructure, section: string, framedBy: string | null, enclosing: string[], out: Walked[]): void {
  const child = (n: number): string => (section === '' ? String(n) : `${section}.${n}`);
  const walkParts = (multipart: ImapBodyStructure, prefix: (n: number) => string): void => {
    if (!('parts' in multipart)) return;
    const own = boundaryOf(multipart) as string;
    multipart.parts.forEach((p, i) => sections(p, prefix(i + 1), own, [own, ...enclosing], out));
  };
  if ('parts' in body) {
    if (section !== '') out.push({ section, node: body, framed_by: framedBy, enclosing });
    walkParts(body, child);
    return;
  }
  const at = section === '' ? '1' : section;
  out.push({ section: at, node: body, framed_by: framedBy, enclosing });
  const inner = body.body;
  if (inner && 'parts' in inner) walkParts(inner, (n) => `${at}.${n}`);
  else if (inner) sections(inner, `${at}.1`, null, enclosing, out);
}

export function assertStructureInvariants(raw: Buffer, parsed: ParsedMessage): void {
  const parts = new Map<string, ImapPartOffsets>(parsed.imap.parts.map((p) => [p.section, p]));
  assert.equal(parts.size, parsed.imap.parts.length, 'sections are unique');
  for (const p of parsed.imap.parts) {
    assert.ok(p.header_start >= 0 && p.header_start <= p.body_start && p.body_start <= p.body_end && p.body_end <= raw.length, `offsets of "${p.section}" are ordered and in range`);
    if (p.message_body_start !== null) assert.ok(p.message_body_start >= p.body_start && p.message_body_start <= p.body_end);
  }
  const whole = parts.get('');
  assert.ok(whole, 'section "" covers the message');
  assert.deepEqual([whole.header_start, whole.body_end], [0, raw.length]);

  const walked: Walked[] = [];
  sections(parsed.imap.bodystructure, '', null, [], walked);
  assert.deepEqual(walked.map((w) => w.section).sort(), [...parts.keys()].filter((s) => s !== '').sort(), 'BODYSTRUCTURE and offsets name the same sections');
  for (const { section, node, framed_by: own, enclosing } of walked) {
    const p = parts.get(section) as ImapPartOffsets;
    if (!('parts' in node)) assert.equal(node.size, p.body_end - p.body_start, `size of ${section}`);
    if (own === null) continue;
    // RFC 2046: a body part follows "--boundary" + line break and ends before line break + "--boundary"
    // (an outer one when the multipart was never closed).
    const before = text(raw, Math.max(0, p.header_start - own.length - 300), p.header_start);
    assert.match(before, new RegExp(`--${escape(own)}[ \\t\\r]*\\n?$`), `delimiter before ${section}`);
    const after = text(raw, p.body_end, p.body_end + 202);
    // An empty part between two delimiter lines has no line break of its own left.
    const newline = p.header_start === p.body_end ? '(?:\\r?\\n)?' : '\\r?\\n';
    const closes = enclosing.some((b) => new RegExp(`^${newline}--${escape(b)}`).test(after));
    assert.ok(p.body_end === raw.length || closes, `delimiter after ${section}: ${JSON.stringify(after.slice(0, 40))}`);
  }
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
