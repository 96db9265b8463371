// Finds where quoted history starts in a message body, as line indexes.
//
// Rules (documented for agents, applied identically to text/plain and HTML-derived text):
// - The first reply header that is followed by unquoted text ("On ... wrote:" then the old
//   message with no '>'), an Outlook header block (From:/Sent:/To:/Subject: in any of the
//   supported languages) or an "-----Original Message-----" separator starts *history*:
//   everything from there to the end is old mail.
// - A forward marker ("---------- Forwarded message ---------", "Begin forwarded message:",
//   translations), or an Outlook header block when the subject says FW:/WG:/TR:..., starts a
//   *forward*: kept verbatim, because an agent must read forwarded content.
// - A header block introduced by the sender ("The headers shown in Outlook are:", "See
//   below:") is content the sender points at, and is kept like a forward.
// - A '>' quote that opens with a forward marker and has no reply header above (Apple Mail
//   puts "Begin forwarded message:" inside the quote) is a forward too.
// - '>' quotes are removed only when they trail the message (nothing the sender wrote follows
//   them), together with the reply header just above (in a known language, or any line
//   ending in ':' that names an address and a date). Quotes with the sender's answers
//   between them (inline replies, bottom posts) stay: the answers refer to them.
import { QUOTE_SCAN_MAX_LINES } from './limits.ts';
import { isBlank } from './normalize.ts';
import {
  attributionAt,
  attributionEndingAt,
  genericAttributionEndingAt,
  headerBlockAt,
  isForwardBlock,
  isForwardMarker,
  isHistoryMark,
  isOriginalMessageSeparator,
  isQuoted,
  isUnderscoreRule,
  unquote,
} from './reply-headers.ts';

export type HistoryStart = { at: number; kind: 'history' | 'forward' };

function nextContent(lines: readonly string[], from: number): number {
  for (let i = from; i < lines.length; i++) {
    const l = lines[i] ?? '';
    if (!isBlank(l) && !isHistoryMark(l)) return i;
  }
  return -1;
}

/** Classifies the lines after a "separator" style start (rule or "Original Message"). */
function afterSeparator(lines: readonly string[], i: number, subject: string | null | undefined): HistoryStart['kind'] {
  const j = nextContent(lines, i + 1);
  return isForwardBlock(j >= 0 ? headerBlockAt(lines, j) : null, subject) ? 'forward' : 'history';
}

// A history mark (from an HTML quote container) says old mail starts here; what follows
// tells whether it is a forward, a '>' quote handled by the trailing rule, or plain history.
function afterMark(lines: readonly string[], j: number, subject: string | null | undefined): HistoryStart['kind'] | 'skip' {
  if (j < 0) return 'skip';
  const line = lines[j] ?? '';
  if (isForwardMarker(line)) return 'forward';
  if (isQuoted(line)) return 'skip';
  if (isOriginalMessageSeparator(line) || isUnderscoreRule(line)) return afterSeparator(lines, j, subject);
  const block = headerBlockAt(lines, j);
  if (block) return isForwardBlock(block, subject) ? 'forward' : 'history';
  const attribution = attributionAt(lines, j);
  const after = nextContent(lines, (attribution?.end ?? j) + 1);
  // A reply header in a language we do not know still ends with a colon.
  if ((attribution || line.trimEnd().endsWith(':')) && after >= 0 && isQuoted(lines[after] ?? '')) return 'skip';
  return isForwardBlock(null, subject) ? 'forward' : 'history';
}

function previousContent(lines: readonly string[], from: number): number {
  for (let i = from - 1; i >= 0; i--) {
    const l = lines[i] ?? '';
    if (!isBlank(l) && !isHistoryMark(l)) return i;
  }
  return -1;
}

// The sender introduces what follows ("...are:", "See below:").
function introducedBySender(lines: readonly string[], i: number): boolean {
  const p = previousContent(lines, i);
  if (p < 0) return false;
  const prev = lines[p] ?? '';
  return !isQuoted(prev) && /[:：]$/.test(prev.trim()) && !attributionEndingAt(lines, p) && !headerBlockAt(lines, p);
}

/** First line where unquoted history or a forward begins, scanning at most QUOTE_SCAN_MAX_LINES. */
export function findHistoryStart(lines: readonly string[], subject: string | null | undefined): HistoryStart | null {
  const limit = Math.min(lines.length, QUOTE_SCAN_MAX_LINES);
  for (let i = 0; i < limit; i++) {
    const line = lines[i] ?? '';
    if (isBlank(line)) continue;
    if (isQuoted(line)) {
      const p = previousContent(lines, i);
      const opensBlock = p < 0 || !isQuoted(lines[p] ?? '');
      if (opensBlock && isForwardMarker(unquote(line)) && (p < 0 || !attributionEndingAt(lines, p))) return { at: i, kind: 'forward' };
      continue;
    }
    if (isHistoryMark(line)) {
      const j = nextContent(lines, i + 1);
      if (j < 0) return null;
      const kind = afterMark(lines, j, subject);
      if (kind !== 'skip') return { at: i, kind };
      // marks and blank lines up to j hold nothing more to look at
      i = j - 1;
      continue;
    }
    if (isForwardMarker(line)) return { at: i, kind: 'forward' };
    if (isOriginalMessageSeparator(line)) return { at: i, kind: introducedBySender(lines, i) ? 'forward' : afterSeparator(lines, i, subject) };
    if (isUnderscoreRule(line)) {
      const j = nextContent(lines, i + 1);
      if (j >= 0 && headerBlockAt(lines, j)) return { at: i, kind: introducedBySender(lines, i) ? 'forward' : afterSeparator(lines, i, subject) };
      continue;
    }
    const block = headerBlockAt(lines, i);
    if (block) return { at: i, kind: introducedBySender(lines, i) || isForwardBlock(block, subject) ? 'forward' : 'history' };
    const attribution = attributionAt(lines, i);
    if (attribution) {
      const k = nextContent(lines, attribution.end + 1);
      if (k < 0 && attribution.strong) return { at: i, kind: 'history' };
      // Followed by '>' lines: the trailing-quote rule decides, since answers may follow.
      if (k >= 0 && !isQuoted(lines[k] ?? '') && attribution.strong) return { at: i, kind: 'history' };
      i = attribution.end;
    }
  }
  return null;
}

/** Start of the '>' quote (with its reply header) that ends lines[0, end), or `end` if none. */
export function trailingQuoteStart(lines: readonly string[], end: number): number {
  let e = end - 1;
  while (e >= 0 && (isBlank(lines[e] ?? '') || isHistoryMark(lines[e] ?? ''))) e--;
  if (e < 0 || !isQuoted(lines[e] ?? '')) return end;
  let s = e;
  while (s > 0) {
    const above = lines[s - 1] ?? '';
    if (!isQuoted(above) && !isBlank(above) && !isHistoryMark(above)) break;
    s--;
  }
  const p = s - 1;
  if (p >= 0) {
    const attribution = attributionEndingAt(lines, p);
    const generic = attribution ? null : genericAttributionEndingAt(lines, p);
    if (attribution) s = attribution.start;
    else if (generic !== null) s = generic;
    else if ((lines[p] ?? '').trimEnd().endsWith(':') && p > 0 && isHistoryMark(lines[p - 1] ?? '')) s = p;
  }
  while (s > 0 && (isHistoryMark(lines[s - 1] ?? '') || isBlank(lines[s - 1] ?? ''))) s--;
  return s;
}
