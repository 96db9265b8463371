// Parse-once for ingest: one raw RFC 5322 message in, everything the index row needs out (API
// summary and detail fields, attachment metadata, headers, IMAP envelope/bodystructure and byte
// offsets per section), so no front-end re-parses the blob. Never throws; hostile input costs
// bounded work (src/mime/limits.ts) and is reported in `problems`.
import { compile } from 'html-to-text';
import { charsetKnown, decodeText, decodedSize, disposition, filename, leaves, partId, selectBodies } from './body-parts.ts';
import type { HeaderField } from './header-block.ts';
import { paramValue } from './header-block.ts';
import { boundReferences, cleanText, decodeHeaderText, parseAddresses, parseDate, parseMessageIds } from './header-values.ts';
import type { ParsedAddress } from './header-values.ts';
import { buildImapStructure } from './imap-structure.ts';
import type { ImapStructure } from './imap-structure.ts';
import { PREVIEW_HTML_INPUT_MAX_CHARS, PREVIEW_HTML_SCAN_MAX_CHARS, PREVIEW_MAX_CHARS, PROBLEMS_MAX } from './limits.ts';
import { splitMime } from './structure.ts';
import type { MimeEntity } from './structure.ts';

export type { ParsedAddress } from './header-values.ts';
export type { HeaderField } from './header-block.ts';
export type { ImapAddress, ImapBodyStructure, ImapEnvelope, ImapMultipart, ImapPartOffsets, ImapSinglePart, ImapStructure } from './imap-structure.ts';

export type ParsedAttachment = {
  /** IMAP section number of the part ("2", "1.2"); stable handle for download and BODY[...]. */
  part_id: string;
  filename: string | null;
  /** Lower-case type/subtype as declared (text/plain when missing or invalid). */
  content_type: string;
  /** Decoded size in bytes. */
  size_bytes: number;
  disposition: 'attachment' | 'inline' | null;
  /** Without angle brackets. */
  content_id: string | null;
};

export type ParsedMessage = {
  from: ParsedAddress | null;
  sender: ParsedAddress | null;
  to: ParsedAddress[];
  cc: ParsedAddress[];
  bcc: ParsedAddress[];
  reply_to: ParsedAddress[];
  /** Decoded; null when there is no Subject field. */
  subject: string | null;
  /** Date header as an ISO 8601 UTC string; null when missing or unparsable. */
  sent_at: string | null;
  /** Without angle brackets. */
  message_id: string | null;
  in_reply_to: string | null;
  /** Oldest first, as in the header (bounded: root plus the most recent ids). */
  references: string[];
  text_body: string | null;
  html_body: string | null;
  /** First ~200 characters of readable text, whitespace collapsed; from the HTML when there is no text. */
  preview: string | null;
  /** True when some attachment is more than an inline image of an HTML body (multipart/related with a Content-ID). */
  has_attachments: boolean;
  attachments: ParsedAttachment[];
  /** The top-level header block in order, values unfolded but not decoded (bounded). */
  headers: HeaderField[];
  /** Raw message size in bytes. */
  size_bytes: number;
  imap: ImapStructure;
  /** What was wrong with the input and how it was read; empty for clean mail. */
  problems: string[];
};

const htmlToText = compile({
  wordwrap: false,
  selectors: [
    { selector: 'a', options: { ignoreHref: true } },
    { selector: 'img', format: 'skip' },
    { selector: 'h1', options: { uppercase: false } },
    { selector: 'h2', options: { uppercase: false } },
    { selector: 'h3', options: { uppercase: false } },
  ],
});

/**
 * The first PREVIEW_MAX_CHARS of `text` with runs of white space collapsed. Words are found with a
 * native regex scan, so a body of megabytes of blanks costs one pass, and the loop stops early.
 */
export function makePreview(text: string): string | null {
  const word = /\S+/gu;
  let out = '';
  let m: RegExpExecArray | null;
  while (out.length < PREVIEW_MAX_CHARS && (m = word.exec(text)) !== null) {
    out += (out ? ' ' : '') + m[0].slice(0, PREVIEW_MAX_CHARS);
  }
  if (out.length > PREVIEW_MAX_CHARS) {
    out = out.slice(0, PREVIEW_MAX_CHARS);
    // Do not end on half a surrogate pair.
    if (/[\ud800-\udbff]$/.test(out)) out = out.slice(0, -1);
    out = out.trimEnd();
  }
  return out.length > 0 ? out : null;
}

/** Next `open` (e.g. "<head") that is a whole tag name, not a prefix of another ("<header"). */
function findTag(lower: string, open: string, from: number): number {
  for (let at = lower.indexOf(open, from); at >= 0; at = lower.indexOf(open, at + 1)) {
    if (open === '<!--' || /[\s/>]/.test(lower[at + open.length] ?? '>')) return at;
  }
  return -1;
}

/**
 * Drops <head>, <style> and <script> blocks (and comments) with indexOf scans, so the bounded
 * slice handed to HTML-to-text starts near the visible text. Unclosed blocks run to the end.
 */
export function stripInvisibleHtml(html: string): string {
  const source = html.slice(0, PREVIEW_HTML_SCAN_MAX_CHARS);
  const lower = source.toLowerCase();
  let out = '';
  let pos = 0;
  const blocks: Array<[string, string]> = [['<head', '</head>'], ['<style', '</style>'], ['<script', '</script>'], ['<!--', '-->']];
  // Next position of each opener, searched again only once passed: keeps the scan linear.
  const nextAt = blocks.map(() => -2);
  while (pos < source.length && out.length < PREVIEW_HTML_INPUT_MAX_CHARS) {
    let next = -1;
    let close = '';
    for (const [i, [open, end]] of blocks.entries()) {
      let at = nextAt[i] as number;
      if (at !== -1 && at < pos) at = nextAt[i] = findTag(lower, open, pos);
      if (at >= 0 && (next < 0 || at < next)) [next, close] = [at, end];
    }
    if (next < 0) {
      out += source.slice(pos);
      break;
    }
    out += source.slice(pos, next);
    const end = lower.indexOf(close, next);
    pos = end < 0 ? source.length : end + close.length;
  }
  return out.slice(0, PREVIEW_HTML_INPUT_MAX_CHARS);
}

function contentId(e: MimeEntity): string | null {
  const raw = e.fields.get('content-id');
  if (raw === undefined) return null;
  const id = cleanText(raw).trim().replace(/^<|>$/g, '').trim();
  return id || null;
}

/** Parses a raw message. Never rejects: on an internal failure it returns what it has and says so. */
export async function parseMessage(raw: Buffer): Promise<ParsedMessage> {
  const problems = new Set<string>();
  try {
    // Callers holding a plain Uint8Array (a stream chunk) get the same treatment as a Buffer.
    const bytes: Uint8Array = raw;
    const input = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return await parseUnsafe(input, problems);
  } catch (error) {
    problems.add(`internal_error: ${error instanceof Error ? error.message : String(error)}`);
    return emptyResult(typeof raw?.length === 'number' ? raw.length : 0, problems);
  }
}

const NOT_BLANK = /\S/;

async function parseUnsafe(raw: Buffer, problems: Set<string>): Promise<ParsedMessage> {
  const structure = splitMime(raw);
  for (const p of structure.problems) problems.add(p);
  const root = structure.root;
  const f = root.fields;

  const from = parseAddresses(f.get('from'), problems, 'from');
  const sender = parseAddresses(f.get('sender'), problems, 'sender');
  if (!f.has('from')) problems.add('from_missing');
  if (!f.has('date')) problems.add('date_missing');
  if (!f.has('message-id')) problems.add('message_id_missing');
  const sentAt = parseDate(f.get('date'));
  if (f.has('date') && sentAt === null) problems.add('date_invalid');

  const selection = selectBodies(root);
  const decoded = new Map<MimeEntity, string>();
  const decode = async (e: MimeEntity): Promise<string> => {
    const cached = decoded.get(e);
    if (cached !== undefined) return cached;
    const charset = paramValue(e.params, 'charset');
    if (charset && !charsetKnown(charset.trim().toLowerCase())) problems.add(`charset_unknown: ${cleanText(charset).slice(0, 64)} in part ${partId(e)}, read as windows-1252`);
    let text = '';
    try {
      text = await decodeText(raw, e);
      if (text.includes('\0')) {
        problems.add(`body_nul: part ${partId(e)} has NUL characters, replaced by U+FFFD`);
        text = text.replace(/\0/g, '\ufffd');
      }
    } catch (error) {
      problems.add(`part_undecodable: ${partId(e)} ${error instanceof Error ? error.message : ''}`.trim());
    }
    decoded.set(e, text);
    return text;
  };
  const join = async (parts: MimeEntity[], subtype: string): Promise<string | null> => {
    const chosen = parts.filter((p) => p.type === 'text' && p.subtype === subtype);
    if (chosen.length === 0) return null;
    const texts: string[] = [];
    for (const p of chosen) texts.push(await decode(p));
    const joined = texts.join('\n');
    // An empty body reads as "no body" for API clients, like a missing one. (\S is what trim()
    // keeps, tested without trim's copy of the whole body.)
    return NOT_BLANK.test(joined) ? joined : null;
  };
  const textBody = await join(selection.text, 'plain');
  const htmlBody = await join(selection.html, 'html');

  const bodyParts = new Set([...selection.text.filter((p) => p.subtype === 'plain'), ...selection.html.filter((p) => p.subtype === 'html')]);
  const attachments: ParsedAttachment[] = [];
  let hasAttachments = false;
  for (const leaf of leaves(root)) {
    const size = decodedSize(raw, leaf);
    if (size.damaged) problems.add(`${leaf.encoding === 'base64' ? 'base64' : 'quoted_printable'}_damaged: part ${partId(leaf)} decoded leniently`);
    if (bodyParts.has(leaf) && leaf.type === 'text') continue;
    const a: ParsedAttachment = {
      part_id: partId(leaf),
      filename: filename(leaf),
      // An unopened multipart's body is useless without its boundary: offer it as plain bytes.
      content_type: leaf.opaque && leaf.type === 'multipart' ? 'application/octet-stream' : `${leaf.type}/${leaf.subtype}`,
      size_bytes: size.size,
      disposition: disposition(leaf),
      content_id: contentId(leaf),
    };
    attachments.push(a);
    const relatedInline = leaf.parent_multipart === 'related' && a.content_id !== null && a.disposition !== 'attachment';
    if (!relatedInline) hasAttachments = true;
  }

  let preview = textBody === null ? null : makePreview(textBody);
  if (preview === null && htmlBody !== null) {
    try {
      preview = makePreview(htmlToText(stripInvisibleHtml(htmlBody)));
    } catch {
      problems.add('preview_failed: HTML could not be converted');
    }
  }

  const messageId = f.has('message-id') ? (parseMessageIds(f.get('message-id'))[0] ?? null) : null;
  if (f.has('message-id') && messageId === null) problems.add('message_id_invalid');
  return {
    from: from[0] ?? null,
    sender: sender[0] ?? null,
    to: parseAddresses(f.get('to'), problems, 'to'),
    cc: parseAddresses(f.get('cc'), problems, 'cc'),
    bcc: parseAddresses(f.get('bcc'), problems, 'bcc'),
    reply_to: parseAddresses(f.get('reply-to'), problems, 'reply-to'),
    subject: f.has('subject') ? decodeHeaderText(f.get('subject') as string) : null,
    sent_at: sentAt,
    message_id: messageId,
    in_reply_to: parseMessageIds(f.get('in-reply-to'))[0] ?? null,
    references: boundReferences(parseMessageIds(f.get('references'))),
    text_body: textBody,
    html_body: htmlBody,
    preview,
    has_attachments: hasAttachments,
    attachments,
    headers: structure.headers,
    size_bytes: raw.length,
    imap: buildImapStructure(raw, root),
    problems: [...problems].slice(0, PROBLEMS_MAX),
  };
}

/** The shape of an unreadable message: the whole input is one opaque body so IMAP can still serve it. */
function emptyResult(size: number, problems: Set<string>): ParsedMessage {
  return {
    from: null, sender: null, to: [], cc: [], bcc: [], reply_to: [], subject: null, sent_at: null,
    message_id: null, in_reply_to: null, references: [], text_body: null, html_body: null, preview: null,
    has_attachments: false, attachments: [], headers: [], size_bytes: size,
    imap: {
      envelope: { date: null, subject: null, from: null, sender: null, reply_to: null, to: null, cc: null, bcc: null, in_reply_to: null, message_id: null },
      bodystructure: {
        type: 'application', subtype: 'octet-stream', params: [], id: null, description: null, encoding: '7bit', size,
        lines: null, envelope: null, body: null, md5: null, disposition: null, language: null, location: null,
      },
      parts: [
        { section: '', header_start: 0, body_start: 0, body_end: size, message_body_start: null },
        { section: '1', header_start: 0, body_start: 0, body_end: size, message_body_start: null },
      ],
    },
    problems: [...problems].slice(0, PROBLEMS_MAX),
  };
}
