// Reading one MIME header block from raw bytes: where it ends, its fields (unfolded, decoded to
// strings), and structured values with parameters (Content-Type, Content-Disposition, RFC 2231).
// Used by the structural splitter for every entity; bounded by the limits in ./limits.ts.
import { HEADER_FIELDS_MAX, HEADER_KEPT_MAX_BYTES, HEADER_PARAMS_MAX, HEADER_VALUE_MAX_BYTES } from './limits.ts';

export type HeaderField = { name: string; value: string };
/** Ordered parameters as written (names lower-cased, quotes removed, RFC 2231 sections not merged). */
export type HeaderParams = Array<[string, string]>;
export type StructuredValue = { value: string; params: HeaderParams };

export type HeaderBlock = {
  /** First byte after the blank line that ends the block (or `end` when there is none). */
  body_start: number;
  /** First occurrence of each field ParsedMessage and IMAP need, keyed by lower-case name. */
  fields: Map<string, string>;
  /** Every field in order (only when asked for, and bounded). */
  all: HeaderField[];
  problems: string[];
};

const LF = 0x0a;
const CR = 0x0d;
const NUL_RE = /\0/g;

/** Fields the parser reads from any entity; anything else is only kept in the top-level `all` list. */
export const WANTED_FIELDS = new Set([
  'content-type', 'content-transfer-encoding', 'content-disposition', 'content-id', 'content-description',
  'content-md5', 'content-language', 'content-location',
  'date', 'subject', 'from', 'sender', 'reply-to', 'to', 'cc', 'bcc', 'in-reply-to', 'message-id', 'references',
]);

const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const cp1252 = new TextDecoder('windows-1252');

/**
 * Header bytes to a string. Raw 8-bit headers are UTF-8 when they decode as such (RFC 6532), and
 * otherwise almost always Latin-1 or Windows-1252 from old clients. NUL becomes U+FFFD because
 * PostgreSQL text columns reject it.
 */
export function decodeHeaderBytes(bytes: Uint8Array): { text: string; eightBit: 'none' | 'utf8' | 'latin1'; nul: boolean } {
  let high = false;
  let nul = false;
  for (const b of bytes) {
    if (b >= 0x80) high = true;
    else if (b === 0) nul = true;
  }
  let text: string;
  let eightBit: 'none' | 'utf8' | 'latin1' = 'none';
  if (!high) text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  else {
    try {
      text = utf8Strict.decode(bytes);
      eightBit = 'utf8';
    } catch {
      text = cp1252.decode(bytes);
      eightBit = 'latin1';
    }
  }
  return { text: nul ? text.replace(NUL_RE, '\ufffd') : text, eightBit, nul };
}

function isFieldNameByte(b: number): boolean {
  return b > 0x20 && b < 0x7f && b !== 0x3a;
}

/** Length of the field name when the line starts with `name:` (whitespace before the colon tolerated, RFC 5322 obs-syntax). */
function fieldNameLength(raw: Uint8Array, start: number, end: number): number {
  let i = start;
  while (i < end && isFieldNameByte(raw[i] as number)) i++;
  const nameEnd = i;
  if (nameEnd === start) return -1;
  while (i < end && (raw[i] === 0x20 || raw[i] === 0x09)) i++;
  return i < end && raw[i] === 0x3a ? nameEnd - start : -1;
}

/**
 * Scans the header block that starts at `start` and may not extend past `end`. The block ends at
 * the first empty line (CRLF or bare LF). Work is one pass over the block; only wanted fields
 * (and, with `keepAll`, a bounded list of every field) are decoded.
 */
export function readHeaderBlock(raw: Uint8Array, start: number, end: number, keepAll: boolean): HeaderBlock {
  const fields = new Map<string, string>();
  const all: HeaderField[] = [];
  const problems = new Set<string>();
  let keptBytes = 0;
  let bodyStart = end;
  // The field being collected: name and the byte ranges of its lines (continuations appended).
  let name: string | null = null;
  let segments: Array<[number, number]> = [];
  let segmentBytes = 0;
  let keep = false;

  const finish = (): void => {
    if (name === null || !keep) return;
    const lower = name.toLowerCase();
    const buf = new Uint8Array(segmentBytes);
    let at = 0;
    for (const [s, e] of segments) {
      buf.set(raw.subarray(s, e), at);
      at += e - s;
    }
    const decoded = decodeHeaderBytes(buf);
    if (decoded.eightBit === 'latin1') problems.add(`header_8bit_latin1: ${name}`);
    if (decoded.nul) problems.add(`header_nul: ${name}`);
    const value = decoded.text.trim();
    if (WANTED_FIELDS.has(lower) && !fields.has(lower)) fields.set(lower, value);
    if (keepAll && all.length < HEADER_FIELDS_MAX && keptBytes < HEADER_KEPT_MAX_BYTES) {
      all.push({ name, value });
      keptBytes += segmentBytes;
    } else if (keepAll) problems.add('headers_truncated: header list limit reached');
  };

  const append = (s: number, e: number): void => {
    if (!keep) return;
    const room = HEADER_VALUE_MAX_BYTES - segmentBytes;
    if (room <= 0) return;
    if (e - s > room) {
      e = s + room;
      problems.add(`header_value_truncated: ${name ?? ''}`);
    }
    segments.push([s, e]);
    segmentBytes += e - s;
  };

  let pos = start;
  while (pos < end) {
    let lf = raw.indexOf(LF, pos);
    if (lf < 0 || lf >= end) lf = end;
    const next = lf < end ? lf + 1 : end;
    let lineEnd = lf;
    if (lineEnd > pos && raw[lineEnd - 1] === CR) lineEnd--;
    if (lineEnd === pos) {
      bodyStart = next;
      finish();
      name = null;
      return { body_start: bodyStart, fields, all, problems: [...problems] };
    }
    const first = raw[pos] as number;
    if ((first === 0x20 || first === 0x09) && name !== null) {
      // Unfolding (RFC 5322 §2.2.3) drops the line break and keeps the leading white space.
      append(pos, lineEnd);
    } else {
      finish();
      const nameLength = fieldNameLength(raw, pos, lineEnd);
      if (nameLength < 0) {
        problems.add('header_line_malformed: line without a field name skipped');
        name = null;
      } else {
        name = Buffer.from(raw.buffer, raw.byteOffset + pos, nameLength).toString('latin1');
        const lower = name.toLowerCase();
        keep = (WANTED_FIELDS.has(lower) && !fields.has(lower)) || (keepAll && all.length < HEADER_FIELDS_MAX && keptBytes < HEADER_KEPT_MAX_BYTES);
        if (keepAll && !keep) problems.add('headers_truncated: header list limit reached');
        segments = [];
        segmentBytes = 0;
        const colon = raw.indexOf(0x3a, pos + nameLength);
        append(colon + 1, lineEnd);
      }
    }
    pos = next;
  }
  finish();
  if (start < end) problems.add('header_unterminated: no blank line before the end of the entity');
  return { body_start: bodyStart, fields, all, problems: [...problems] };
}

/** Removes RFC 5322 comments outside quoted strings, bounded by the input length. */
function stripComments(s: string): string {
  if (!s.includes('(')) return s;
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (c === '\\' && (quoted || depth > 0)) {
      if (depth === 0) out += c + (s[i + 1] ?? '');
      i++;
    } else if (c === '"' && depth === 0) {
      quoted = !quoted;
      out += c;
    } else if (c === '(' && !quoted) depth++;
    else if (c === ')' && !quoted && depth > 0) depth--;
    else if (depth === 0) out += c;
  }
  return out;
}

/** `value; a=b; c="d;e"` → value and ordered params. Lenient: unquoted values may contain spaces. */
export function parseStructured(header: string): StructuredValue {
  const params: HeaderParams = [];
  const pieces: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < header.length; i++) {
    const c = header[i] as string;
    if (c === '\\' && quoted) {
      current += c + (header[i + 1] ?? '');
      i++;
    } else if (c === '"') {
      quoted = !quoted;
      current += c;
    } else if (c === ';' && !quoted) {
      pieces.push(current);
      current = '';
      if (pieces.length > HEADER_PARAMS_MAX) break;
    } else current += c;
  }
  if (pieces.length <= HEADER_PARAMS_MAX) pieces.push(current);
  const value = stripComments(pieces[0] ?? '').trim().toLowerCase();
  for (const piece of pieces.slice(1)) {
    const eq = piece.indexOf('=');
    if (eq <= 0) continue;
    const key = piece.slice(0, eq).trim().toLowerCase();
    let v = piece.slice(eq + 1).trim();
    if (v.startsWith('"')) {
      let out = '';
      for (let i = 1; i < v.length; i++) {
        const c = v[i] as string;
        if (c === '\\') out += v[++i] ?? '';
        else if (c === '"') break;
        else out += c;
      }
      v = out;
    }
    if (key) params.push([key, v]);
  }
  return { value, params };
}

function charsetDecoder(label: string): { decode(input: Uint8Array): string } {
  try {
    return new TextDecoder(label.trim() || 'utf-8');
  } catch {
    return cp1252;
  }
}

/** Percent-decoding of an RFC 2231 extended value into bytes (other characters as UTF-8). */
function percentBytes(value: string, into: number[]): void {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x25 && /^[0-9a-f]{2}$/i.test(value.slice(i + 1, i + 3))) {
      into.push(parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) into.push(c);
    else for (const b of Buffer.from(value[i] as string, 'utf8')) into.push(b);
  }
}

/**
 * One parameter's value with RFC 2231 continuations (`name*0*`, `name*1`) and charsets
 * (`name*=utf-8''%E2%82%AC`) resolved. Encoded words inside plain values are left to the caller.
 */
export function paramValue(params: HeaderParams, name: string): string | null {
  let plain: string | null = null;
  let extended: string | null = null;
  const sections: Array<{ index: number; value: string; encoded: boolean }> = [];
  for (const [key, value] of params) {
    if (key === name) plain ??= value;
    else if (key === `${name}*`) extended ??= value;
    else if (key.startsWith(`${name}*`)) {
      const m = /^\*(\d{1,3})(\*)?$/.exec(key.slice(name.length));
      if (m) sections.push({ index: Number(m[1]), value, encoded: m[2] === '*' });
    }
  }
  const split = (v: string): [string, string] => {
    const m = /^([^']*)'[^']*'(.*)$/s.exec(v);
    return m ? [m[1] || 'utf-8', m[2] ?? ''] : ['utf-8', v];
  };
  if (extended !== null) {
    const [charset, v] = split(extended);
    const bytes: number[] = [];
    percentBytes(v, bytes);
    return charsetDecoder(charset).decode(new Uint8Array(bytes));
  }
  if (sections.length > 0) {
    sections.sort((a, b) => a.index - b.index);
    // Sections are joined as bytes first: a multi-byte character may be split across two of them.
    let charset = 'utf-8';
    const bytes: number[] = [];
    for (const [i, s] of sections.entries()) {
      let v = s.value;
      if (s.encoded && i === 0) [charset, v] = split(v);
      if (s.encoded) percentBytes(v, bytes);
      else for (const b of Buffer.from(v, 'utf8')) bytes.push(b);
    }
    return charsetDecoder(charset).decode(new Uint8Array(bytes));
  }
  return plain;
}
