// Thread keys for ingest: the Message-IDs a message points at (most recent first) and a normalised
// subject for the fallback when a client drops References. Subject normalisation follows the RFC 5256
// base-subject idea extended with the reply/forward prefixes real clients write in other languages.
import { REFERENCES_MAX } from './limits.ts';
import type { ParsedMessage } from './parse.ts';

export type ThreadKeys = {
  /** In-Reply-To, then References from newest to oldest; deduplicated, own Message-ID excluded. */
  message_ids: string[];
  /** Normalised subject, lower-cased for comparison; null when nothing is left. */
  subject_key: string | null;
  /** The subject carried a reply/forward prefix: a subject-only match is then far more plausible. */
  is_reply_or_forward: boolean;
};

// Reply and forward prefixes: English, German (AW, WG), Nordic (SV, VS), Dutch (Antw, Doorst),
// French (TR), Spanish (RV), Portuguese (Enc), Italian (R), Polish (Odp), Chinese and Japanese.
// An optional counter (Re[2]:, Re(3):) and a full-width colon are accepted.
const REPLY_PREFIX = /(?:re|fwd?|aw|wg|sv|vs|antw|doorst|tr|rv|enc|r|odp|回复|回覆|转发|轉發|答复|返信|転送)[ \t]*(?:\[\d{1,6}\]|\(\d{1,6}\))?[ \t]*[:：][ \t]*/iy;
// A leading [list-tag] or [PATCH ...] blob (RFC 5256 subj-blob), removed only when text remains.
const BLOB = /\[[^[\]]{0,100}\][ \t]*/y;
const FWD_TRAILER = /[ \t]*\(fwd\)$/i;

function strip(subject: string): { text: string; prefixed: boolean } {
  let s = subject.replace(/\s+/g, ' ').trim();
  let prefixed = false;
  for (;;) {
    const trailer = FWD_TRAILER.exec(s);
    if (!trailer) break;
    s = s.slice(0, trailer.index).trimEnd();
    prefixed = true;
  }
  // One pass with sticky expressions: each step consumes input, so the work is linear.
  let pos = 0;
  for (;;) {
    REPLY_PREFIX.lastIndex = pos;
    if (REPLY_PREFIX.test(s)) {
      pos = REPLY_PREFIX.lastIndex;
      prefixed = true;
      continue;
    }
    BLOB.lastIndex = pos;
    if (BLOB.test(s) && BLOB.lastIndex < s.length) {
      pos = BLOB.lastIndex;
      continue;
    }
    break;
  }
  return { text: s.slice(pos).trim(), prefixed };
}

/** "Re: [team] AW: Fwd:  Budget " → "Budget". Whitespace collapsed; case kept. */
export function normaliseSubject(subject: string | null | undefined): string {
  return subject ? strip(subject).text : '';
}

export function threadKeys(parsed: Pick<ParsedMessage, 'message_id' | 'in_reply_to' | 'references' | 'subject'>): ThreadKeys {
  const seen = new Set<string>();
  if (parsed.message_id) seen.add(parsed.message_id);
  const ids: string[] = [];
  const add = (id: string | null | undefined): void => {
    if (id && !seen.has(id) && ids.length <= REFERENCES_MAX) {
      seen.add(id);
      ids.push(id);
    }
  };
  add(parsed.in_reply_to);
  for (let i = parsed.references.length - 1; i >= 0; i--) add(parsed.references[i]);
  const { text, prefixed } = parsed.subject ? strip(parsed.subject) : { text: '', prefixed: false };
  return { message_ids: ids, subject_key: text ? text.toLowerCase() : null, is_reply_or_forward: prefixed };
}
