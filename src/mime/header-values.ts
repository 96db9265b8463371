// Interpreting top-level header values for the index row: addresses (MailboxAddress shape),
// subjects, RFC 5322 dates and Message-ID lists. Lenient on input, strict on what it returns.
import { addressParser, decodeWords } from 'postal-mime';
import { ADDRESSES_MAX, MESSAGE_ID_MAX_LENGTH, REFERENCES_MAX } from './limits.ts';

export type ParsedAddress = { email: string; name: string | null };

// PostgreSQL text rejects NUL, and CR/LF in a display string lets a later re-serialiser inject headers.
const UNSAFE = /[\0\r\n]+/g;
export function cleanText(s: string): string {
  return s.replace(UNSAFE, (m) => (m.includes('\0') ? '\ufffd' : ' '));
}

/** Decodes RFC 2047 encoded words; never throws. */
export function decodeHeaderText(value: string): string {
  try {
    return cleanText(decodeWords(value)).trim();
  } catch {
    return cleanText(value).trim();
  }
}

/** An address field as postal-mime parses it: mailboxes, and groups with their members. */
export type AddressList = readonly Readonly<ReturnType<typeof addressParser>[number]>[];

/** Field values parsed lately, newest last. */
const recentLists = new Map<string, AddressList>();
const RECENT_LISTS_MAX = 64;
/** Longer values are parsed every time: the cache never holds more than 64 × 2 KB of them. */
const RECENT_VALUE_MAX = 2048;

/**
 * postal-mime's parse of an address field, shared: a received message's address fields are read
 * by the parse, by its IMAP envelope and by the spam rules, and postal-mime's parser, which makes a
 * string per character it reads, took ~18 KB and a few percent of the event loop per message
 * doing it three times. The lists are read-only to callers. Throws as addressParser does.
 */
export function addressList(value: string): AddressList {
  const known = recentLists.get(value);
  if (known) return known;
  const list = addressParser(value);
  if (value.length > RECENT_VALUE_MAX) return list;
  if (recentLists.size >= RECENT_LISTS_MAX) recentLists.delete(recentLists.keys().next().value as string);
  recentLists.set(value, list);
  return list;
}

/** The mailboxes of a list, each group replaced by its members (as addressParser's `flatten`). */
function flattenGroups(list: AddressList, out: AddressList[number][] = []): AddressList[number][] {
  for (const a of list) {
    if (a.group) flattenGroups(a.group, out);
    else out.push(a);
  }
  return out;
}

/** Mailboxes of an address field, groups flattened. Entries without an `@` are dropped and reported. */
export function parseAddresses(value: string | undefined, problems: Set<string>, field: string): ParsedAddress[] {
  if (value === undefined) return [];
  let parsed: AddressList;
  try {
    parsed = flattenGroups(addressList(value));
  } catch {
    problems.add(`address_unparsable: ${field}`);
    return [];
  }
  const out: ParsedAddress[] = [];
  for (const a of parsed) {
    if (out.length >= ADDRESSES_MAX) {
      problems.add(`addresses_truncated: ${field} keeps ${ADDRESSES_MAX}`);
      break;
    }
    const email = cleanText(a.address ?? '').trim();
    if (!email.includes('@') || /\s/.test(email)) {
      if (email || a.name) problems.add(`address_invalid: ${field}`);
      continue;
    }
    const name = cleanText(a.name).trim();
    out.push({ email, name: name || null });
  }
  return out;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
// RFC 5322 §4.3 obsolete zones; military letters carry no reliable meaning and count as -0000.
const ZONES: Record<string, number> = { ut: 0, utc: 0, gmt: 0, z: 0, est: -5, edt: -4, cst: -6, cdt: -5, mst: -7, mdt: -6, pst: -8, pdt: -7 };
const RFC5322_DATE = /^\s*(?:[a-z]{2,}\s*,?\s*)?(\d{1,2})[\s-]+([a-z]{3,})\.?[\s-]+(\d{2,4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([+-]\d{4}|[a-z]{1,5}))?/i;
const ISO_DATE = /^\s*\d{4}-\d{2}-\d{2}[t ]\d{2}:\d{2}/i;

/** An RFC 5322 date (or ISO 8601, which some bulk mailers send) as an ISO string; null when it does not parse. */
export function parseDate(value: string | undefined): string | null {
  if (value === undefined) return null;
  const m = RFC5322_DATE.exec(value.slice(0, 200));
  if (!m) {
    if (!ISO_DATE.test(value)) return null;
    const t = Date.parse(value.trim().slice(0, 64));
    return Number.isFinite(t) && t >= Date.UTC(1900, 0, 1) && t < Date.UTC(10000, 0, 1) ? new Date(t).toISOString() : null;
  }
  const day = Number(m[1]);
  const month = MONTHS.indexOf((m[2] ?? '').slice(0, 3).toLowerCase());
  let year = Number(m[3]);
  // RFC 5322 §4.3: two-digit years below 50 are 20xx, three-digit years add 1900.
  if ((m[3] ?? '').length === 2) year += year < 50 ? 2000 : 1900;
  else if ((m[3] ?? '').length === 3) year += 1900;
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Math.min(Number(m[6] ?? 0), 59); // a leap second :60 is clamped
  if (month < 0 || day < 1 || day > 31 || hour > 23 || minute > 59 || year < 1900) return null;
  let offset = 0;
  const zone = m[7];
  if (zone && /^[+-]\d{4}$/.test(zone)) {
    const hh = Number(zone.slice(1, 3));
    const mm = Number(zone.slice(3, 5));
    if (hh > 23 || mm > 59) return null;
    offset = (zone.startsWith('-') ? -1 : 1) * (hh * 60 + mm);
  } else if (zone) offset = (ZONES[zone.toLowerCase()] ?? 0) * 60;
  const local = Date.UTC(year, month, day, hour, minute, second);
  if (new Date(local).getUTCDate() !== day) return null; // 31 Feb and friends
  return new Date(local - offset * 60_000).toISOString();
}

/** Message-IDs in a header value, angle brackets removed. Values without brackets yield their bare tokens. */
export function parseMessageIds(value: string | undefined): string[] {
  if (value === undefined) return [];
  const ids: string[] = [];
  const bracketed = /<([^<>]*)>/g;
  let m: RegExpExecArray | null;
  while ((m = bracketed.exec(value)) !== null) {
    const id = (m[1] ?? '').replace(/\s+/g, '');
    if (id && id.length <= MESSAGE_ID_MAX_LENGTH) ids.push(cleanText(id));
  }
  if (ids.length === 0 && !value.includes('<')) {
    for (const token of value.split(/[\s,]+/)) if (token && token.length <= MESSAGE_ID_MAX_LENGTH) ids.push(cleanText(token));
  }
  return ids;
}

/** References keeps its first id (the thread root) and the most recent ones (RFC 5322 §3.6.4). */
export function boundReferences(ids: string[]): string[] {
  if (ids.length <= REFERENCES_MAX) return ids;
  return [ids[0] as string, ...ids.slice(ids.length - (REFERENCES_MAX - 1))];
}
