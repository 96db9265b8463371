// IMAP ENVELOPE and extended BODYSTRUCTURE (RFC 3501 §7.4.2) and per-section byte offsets, built
// once at ingest from the structural split, as JSON an IMAP encoder serialises without re-parsing.
// Strings are what the message carries (encoded words kept); non-ASCII text is wrapped in RFC 2047
// encoded words, so every string except an address's mailbox and host (raw only for SMTPUTF8 mail)
// is 7-bit and can go on the wire as a quoted string (literals still needed for quotes/backslashes).
import type { Address } from 'postal-mime';
import { parseStructured } from './header-block.ts';
import type { HeaderParams } from './header-block.ts';
import { ADDRESSES_MAX } from './limits.ts';
import { addressList } from './header-values.ts';
import { childSection, walkEntities } from './structure.ts';
import type { MimeEntity } from './structure.ts';

/** One ENVELOPE address. A group opens with {mailbox: group name, host: null} and closes with all four null (RFC 3501). */
export type ImapAddress = { name: string | null; adl: string | null; mailbox: string | null; host: string | null };

export type ImapEnvelope = {
  date: string | null;
  subject: string | null;
  from: ImapAddress[] | null;
  /** Defaults to `from` when the message has no Sender (RFC 3501 requires the server to fill it in). */
  sender: ImapAddress[] | null;
  /** Defaults to `from` when the message has no Reply-To. */
  reply_to: ImapAddress[] | null;
  to: ImapAddress[] | null;
  cc: ImapAddress[] | null;
  bcc: ImapAddress[] | null;
  in_reply_to: string | null;
  message_id: string | null;
};

export type ImapDisposition = { type: string; params: HeaderParams };

/** Extension fields shared by every body (body-ext-1part / body-ext-mpart). */
type ImapExtension = {
  disposition: ImapDisposition | null;
  language: string[] | null;
  location: string | null;
};

/** A non-multipart body. Lower-case type, subtype and encoding; an encoder may upper-case them. */
export type ImapSinglePart = ImapExtension & {
  type: string;
  subtype: string;
  /** Empty list means NIL. */
  params: HeaderParams;
  id: string | null;
  description: string | null;
  encoding: string;
  /** Octets of the body as stored (still transfer-encoded). */
  size: number;
  /** Lines of the body: text/* and message/rfc822 only, otherwise null. */
  lines: number | null;
  /** message/rfc822 only. */
  envelope: ImapEnvelope | null;
  body: ImapBodyStructure | null;
  md5: string | null;
};

export type ImapMultipart = ImapExtension & {
  type: 'multipart';
  subtype: string;
  /** At least one: a multipart without parts is read as text/plain by the splitter. */
  parts: ImapBodyStructure[];
  params: HeaderParams;
};

/** Narrow with `'parts' in body`. */
export type ImapBodyStructure = ImapSinglePart | ImapMultipart;

/**
 * Byte ranges of one section in the raw message: [header_start, body_start) is its MIME header
 * (BODY[x.MIME], or BODY[HEADER] for section ''), [body_start, body_end) its body (BODY[x], or
 * BODY[TEXT] for ''). For an opened message/rfc822 part, [body_start, message_body_start) is
 * BODY[x.HEADER] and [message_body_start, body_end) is BODY[x.TEXT].
 */
export type ImapPartOffsets = {
  section: string;
  header_start: number;
  body_start: number;
  body_end: number;
  message_body_start: number | null;
};

export type ImapStructure = { envelope: ImapEnvelope; bodystructure: ImapBodyStructure; parts: ImapPartOffsets[] };

const NON_ASCII = /[^\x20-\x7e\t]/;

/** RFC 2047 B-encoding in words of at most 45 input bytes (75-character words), split on code points. */
export function encodeWords(text: string): string {
  if (!NON_ASCII.test(text)) return text;
  const words: string[] = [];
  let chunk = '';
  let bytes = 0;
  for (const ch of text) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (bytes + n > 45) {
      words.push(chunk);
      chunk = '';
      bytes = 0;
    }
    chunk += ch;
    bytes += n;
  }
  if (chunk) words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w, 'utf8').toString('base64')}?=`).join(' ');
}

function nstring(value: string | undefined): string | null {
  return value === undefined ? null : encodeWords(value);
}

function imapMailbox(name: string, address: string): ImapAddress {
  const at = address.lastIndexOf('@');
  const local = at >= 0 ? address.slice(0, at) : address;
  const host = at >= 0 ? address.slice(at + 1) : '';
  // Dovecot's placeholders: a NIL host would read as group syntax to the client.
  return { name: name ? encodeWords(name) : null, adl: null, mailbox: local || 'MISSING_MAILBOX', host: host || 'MISSING_DOMAIN' };
}

export function imapAddresses(value: string | undefined): ImapAddress[] | null {
  if (value === undefined) return null;
  let parsed: readonly Address[];
  try {
    parsed = addressList(value);
  } catch {
    return null;
  }
  const out: ImapAddress[] = [];
  for (const a of parsed) {
    if (out.length >= ADDRESSES_MAX) break;
    if (a.group) {
      out.push({ name: null, adl: null, mailbox: encodeWords(a.name || 'undisclosed-recipients'), host: null });
      for (const m of a.group.slice(0, ADDRESSES_MAX)) if (m.address) out.push(imapMailbox(m.name, m.address));
      out.push({ name: null, adl: null, mailbox: null, host: null });
    } else if (a.address) out.push(imapMailbox(a.name, a.address));
  }
  return out.length > 0 ? out : null;
}

export function buildEnvelope(fields: Map<string, string>): ImapEnvelope {
  const from = imapAddresses(fields.get('from'));
  return {
    date: nstring(fields.get('date')),
    subject: nstring(fields.get('subject')),
    from,
    sender: imapAddresses(fields.get('sender')) ?? from,
    reply_to: imapAddresses(fields.get('reply-to')) ?? from,
    to: imapAddresses(fields.get('to')),
    cc: imapAddresses(fields.get('cc')),
    bcc: imapAddresses(fields.get('bcc')),
    in_reply_to: nstring(fields.get('in-reply-to')),
    message_id: nstring(fields.get('message-id')),
  };
}

/** Lines as IMAP counts them: line breaks, plus a final line without one. */
function countLines(raw: Buffer, start: number, end: number): number {
  if (end <= start) return 0;
  let lines = 0;
  let pos = start;
  for (;;) {
    const lf = raw.indexOf(0x0a, pos);
    if (lf < 0 || lf >= end) break;
    lines++;
    pos = lf + 1;
  }
  return raw[end - 1] === 0x0a ? lines : lines + 1;
}

/** Parameter values as sent, with non-ASCII ones (raw 8-bit filenames) wrapped in encoded words. */
function asciiParams(params: HeaderParams): HeaderParams {
  return params.map(([k, v]) => [encodeWords(k), encodeWords(v)]);
}

function extension(e: MimeEntity): ImapExtension {
  const disposition = e.fields.get('content-disposition');
  const parsed = disposition === undefined ? null : parseStructured(disposition);
  const language = e.fields.get('content-language');
  const languages = language === undefined ? [] : language.split(',').map((l) => l.trim()).filter(Boolean);
  return {
    disposition: parsed && parsed.value ? { type: encodeWords(parsed.value), params: asciiParams(parsed.params) } : null,
    language: languages.length > 0 ? languages.map(encodeWords) : null,
    location: nstring(e.fields.get('content-location')),
  };
}

export function buildBodyStructure(raw: Buffer, e: MimeEntity): ImapBodyStructure {
  if (e.type === 'multipart' && !e.opaque) {
    return { type: 'multipart', subtype: e.subtype, parts: e.children.map((c) => buildBodyStructure(raw, c)), params: asciiParams(e.params), ...extension(e) };
  }
  // A container left unopened is served as bytes: MESSAGE/RFC822 without an envelope is not valid IMAP.
  const opaque = e.opaque;
  const params: HeaderParams = opaque ? [] : asciiParams(e.params);
  const isText = !opaque && e.type === 'text';
  if (isText && !params.some(([k]) => k === 'charset')) params.push(['charset', 'us-ascii']);
  return {
    type: opaque ? 'application' : e.type,
    subtype: opaque ? 'octet-stream' : e.subtype,
    params,
    id: nstring(e.fields.get('content-id')),
    description: nstring(e.fields.get('content-description')),
    encoding: encodeWords(e.encoding),
    size: e.body_end - e.body_start,
    lines: isText || e.message ? countLines(raw, e.body_start, e.body_end) : null,
    envelope: e.message ? buildEnvelope(e.message.fields) : null,
    body: e.message ? buildBodyStructure(raw, e.message) : null,
    md5: nstring(e.fields.get('content-md5')),
    ...extension(e),
  };
}

/** Offsets of every addressable section, in document order, starting with the whole message (''). */
export function buildPartOffsets(root: MimeEntity): ImapPartOffsets[] {
  const out: ImapPartOffsets[] = [];
  const entry = (section: string, e: MimeEntity): ImapPartOffsets => ({
    section,
    header_start: e.header_start,
    body_start: e.body_start,
    body_end: e.body_end,
    message_body_start: e.message ? e.message.body_start : null,
  });
  for (const e of walkEntities(root)) {
    if (e.section === '' && e.is_message_root) out.push({ ...entry('', e), message_body_start: null });
    if (!e.is_message_root) out.push(entry(e.section, e));
    // A message whose body is not a multipart is addressed as part 1 of itself (RFC 3501 §6.4.5).
    else if (!(e.type === 'multipart' && !e.opaque)) out.push(entry(childSection(e.section, 1), e));
  }
  return out;
}

export function buildImapStructure(raw: Buffer, root: MimeEntity): ImapStructure {
  return { envelope: buildEnvelope(root.fields), bodystructure: buildBodyStructure(raw, root), parts: buildPartOffsets(root) };
}
