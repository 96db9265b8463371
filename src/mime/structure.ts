// Structural MIME splitter: walks the raw bytes once per nesting level and returns the entity tree
// with IMAP section numbers and byte offsets (header start, body start, body end), so IMAP
// BODY[1.2], BODY[1.2.MIME], BODY[HEADER] and BODY[TEXT] are served by slicing the stored blob.
// postal-mime decodes content but reports no offsets, hence this module. It never throws: invalid
// structure is read the way RFC 2045/2046 advise and reported as a problem.
import { paramValue, parseStructured, readHeaderBlock } from './header-block.ts';
import type { HeaderBlock, HeaderField, HeaderParams } from './header-block.ts';
import { BOUNDARY_MAX_LENGTH, MIME_DEPTH_MAX, MIME_PARTS_MAX } from './limits.ts';

export type MimeEntity = {
  /** IMAP section number: '' for the top-level message, '1', '1.2' ... An embedded message root shares its message/rfc822 part's number. */
  section: string;
  depth: number;
  header_start: number;
  /** After the blank line that ends the header; equals `body_end` when there is no body. */
  body_start: number;
  /** Exclusive. For a multipart child, the line break before the next delimiter belongs to the delimiter (RFC 2046 §5.1.1). */
  body_end: number;
  /** First occurrence of the fields the parser needs, lower-case names, unfolded and decoded. */
  fields: Map<string, string>;
  /** Effective media type (lower-case) after RFC 2045 defaults: a missing or unusable Content-Type reads as text/plain. */
  type: string;
  subtype: string;
  params: HeaderParams;
  /** Content-Transfer-Encoding, lower-case; '7bit' when absent. */
  encoding: string;
  /** Subtype of the enclosing multipart (decides body-part selection), null at a message root. */
  parent_multipart: string | null;
  /** Position among its siblings (0-based). */
  index: number;
  children: MimeEntity[];
  /** The encapsulated message of a message/rfc822 part that was opened. */
  message: MimeEntity | null;
  /** A container (multipart, message/rfc822) deliberately not opened: depth or part limits, or an encoded message. */
  opaque: boolean;
  is_message_root: boolean;
};

export type MimeStructure = { root: MimeEntity; headers: HeaderField[]; problems: string[] };

type Context = { raw: Buffer; parts: number; problems: Set<string> };

const LF = 0x0a;
const CR = 0x0d;
const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const IDENTITY_ENCODINGS = new Set(['7bit', '8bit', 'binary']);

/** Splits a raw message into its MIME entity tree. Linear work per nesting level, never throws. */
export function splitMime(input: Uint8Array): MimeStructure {
  const raw = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const ctx: Context = { raw, parts: 0, problems: new Set() };
  if (raw.length === 0) ctx.problems.add('empty_message: 0 bytes');
  const block = readHeaderBlock(raw, 0, raw.length, true);
  const root = buildEntity(ctx, { start: 0, end: raw.length, section: '', depth: 0, index: 0, parent: null, isRoot: true }, block);
  return { root, headers: block.all, problems: [...ctx.problems] };
}

type Placement = {
  start: number;
  end: number;
  section: string;
  depth: number;
  index: number;
  /** Subtype of the enclosing multipart, null for a message root. */
  parent: string | null;
  isRoot: boolean;
};

function buildEntity(ctx: Context, at: Placement, block?: HeaderBlock): MimeEntity {
  ctx.parts++;
  const header = block ?? readHeaderBlock(ctx.raw, at.start, at.end, false);
  for (const p of header.problems) ctx.problems.add(p);
  const where = at.section || 'message';
  const e: MimeEntity = {
    section: at.section,
    depth: at.depth,
    header_start: at.start,
    body_start: header.body_start,
    body_end: at.end,
    fields: header.fields,
    type: 'text',
    subtype: 'plain',
    params: [],
    encoding: '7bit',
    parent_multipart: at.parent,
    index: at.index,
    children: [],
    message: null,
    opaque: false,
    is_message_root: at.isRoot,
  };
  const cte = header.fields.get('content-transfer-encoding');
  if (cte !== undefined) e.encoding = parseStructured(cte).value || '7bit';

  const declared = header.fields.get('content-type');
  if (declared === undefined) {
    // RFC 2046 §5.1.5: parts of a multipart/digest default to message/rfc822.
    if (at.parent === 'digest') [e.type, e.subtype] = ['message', 'rfc822'];
    else e.params = [['charset', 'us-ascii']];
  } else {
    const parsed = parseStructured(declared);
    const slash = parsed.value.indexOf('/');
    const type = parsed.value.slice(0, slash);
    const subtype = parsed.value.slice(slash + 1);
    if (slash > 0 && TOKEN.test(type) && TOKEN.test(subtype)) {
      [e.type, e.subtype, e.params] = [type, subtype, parsed.params];
    } else {
      ctx.problems.add(`content_type_invalid: ${where} read as text/plain`);
      e.params = [['charset', 'us-ascii']];
    }
  }

  if (e.type === 'multipart') openMultipart(ctx, e, where);
  else if (e.type === 'message' && e.subtype === 'rfc822') openMessage(ctx, e, where);
  return e;
}

/** RFC 2045 §5.2: a Content-Type that cannot be used is read as text/plain; us-ascii. */
function asText(e: MimeEntity): void {
  [e.type, e.subtype, e.params] = ['text', 'plain', [['charset', 'us-ascii']]];
  e.children = [];
}

function openMultipart(ctx: Context, e: MimeEntity, where: string): void {
  const boundary = paramValue(e.params, 'boundary');
  if (!boundary) {
    ctx.problems.add(`boundary_missing: ${where} read as text/plain`);
    return asText(e);
  }
  if (boundary.length > BOUNDARY_MAX_LENGTH) {
    ctx.problems.add(`boundary_too_long: ${where} read as text/plain`);
    return asText(e);
  }
  if (e.depth >= MIME_DEPTH_MAX) {
    ctx.problems.add(`depth_limit: parts deeper than ${MIME_DEPTH_MAX} levels are opaque`);
    e.opaque = true;
    return;
  }
  splitChildren(ctx, e, Buffer.from(`--${boundary}`, 'utf8'), where);
  if (e.children.length === 0) {
    ctx.problems.add(`boundary_not_found: ${where} has no parts, read as text/plain`);
    asText(e);
  }
}

function openMessage(ctx: Context, e: MimeEntity, where: string): void {
  if (!IDENTITY_ENCODINGS.has(e.encoding)) {
    // RFC 2046 §5.2.1 forbids encoding message/rfc822; opening it would mean decoding first.
    ctx.problems.add(`message_encoded: ${where} is ${e.encoding}-encoded, kept opaque`);
    e.opaque = true;
  } else if (e.depth >= MIME_DEPTH_MAX) {
    ctx.problems.add(`depth_limit: parts deeper than ${MIME_DEPTH_MAX} levels are opaque`);
    e.opaque = true;
  } else if (ctx.parts >= MIME_PARTS_MAX) {
    ctx.problems.add(`parts_limit: more than ${MIME_PARTS_MAX} parts, the rest is not split`);
    e.opaque = true;
  } else {
    // A message root that is not a multipart is addressed through its body part, X.1 (RFC 3501 §6.4.5).
    const section = e.is_message_root ? childSection(e.section, 1) : e.section;
    e.message = buildEntity(ctx, { start: e.body_start, end: e.body_end, section, depth: e.depth + 1, index: 0, parent: null, isRoot: true });
  }
}

/**
 * Finds delimiter lines of one boundary inside the entity's body. Delimiters must start a line and
 * may be followed only by `--` and transport padding. Native indexOf keeps this linear.
 */
function splitChildren(ctx: Context, e: MimeEntity, delimiter: Buffer, where: string): void {
  const raw = ctx.raw;
  const end = e.body_end;
  const view = raw.subarray(0, end);
  let partStart = -1; // -1 while in the preamble
  let pos = e.body_start;
  while (pos < end) {
    const i = view.indexOf(delimiter, pos);
    if (i < 0) break;
    pos = i + 1;
    if (i !== e.body_start && raw[i - 1] !== LF) continue;
    let j = i + delimiter.length;
    const close = j + 1 < end && raw[j] === 0x2d && raw[j + 1] === 0x2d;
    if (close) j += 2;
    while (j < end && (raw[j] === 0x20 || raw[j] === 0x09 || raw[j] === CR)) j++;
    if (j < end && raw[j] !== LF) continue;
    const next = j < end ? j + 1 : end;
    let contentEnd = i;
    if (i > e.body_start) {
      contentEnd = i - 1;
      if (contentEnd > e.body_start && raw[contentEnd - 1] === CR) contentEnd--;
    }
    if (partStart >= 0 && !addChild(ctx, e, partStart, Math.max(partStart, contentEnd))) return;
    if (close) return;
    partStart = next;
    pos = next;
  }
  if (partStart >= 0) {
    ctx.problems.add(`multipart_unterminated: ${where} has no closing delimiter`);
    addChild(ctx, e, partStart, end);
  }
}

export function childSection(section: string, n: number): string {
  return section === '' ? String(n) : `${section}.${n}`;
}

function addChild(ctx: Context, e: MimeEntity, start: number, end: number): boolean {
  if (ctx.parts >= MIME_PARTS_MAX) {
    ctx.problems.add(`parts_limit: more than ${MIME_PARTS_MAX} parts, the rest is not split`);
    return false;
  }
  const index = e.children.length;
  e.children.push(buildEntity(ctx, { start, end, section: childSection(e.section, index + 1), depth: e.depth + 1, index, parent: e.subtype, isRoot: false }));
  return true;
}

/** Every entity in document order (containers before their children, embedded messages included). */
export function walkEntities(root: MimeEntity): MimeEntity[] {
  const out: MimeEntity[] = [];
  const stack: MimeEntity[] = [root];
  while (stack.length > 0) {
    const e = stack.pop() as MimeEntity;
    out.push(e);
    if (e.message) stack.push(e.message);
    for (let i = e.children.length - 1; i >= 0; i--) stack.push(e.children[i] as MimeEntity);
  }
  return out;
}
