// Splits a plain-text body into what the sender wrote, trailing quotes, unquoted history,
// forwarded content and signature, then keeps the parts the options ask for.
//
// Order of work: (1) the first unquoted-history or forward start ends the sender's region;
// forwarded content is always kept verbatim (no quote or signature stripping inside it).
// (2) In the sender's region, repeat: drop the trailing '>' quote with its reply header,
// then the signature, until neither changes; a signature below a trailing quote (mutt) and
// a quote below "Sent from my iPhone" (iOS) are both reached this way.
import { STRIP_ROUNDS_MAX } from './limits.ts';
import { HISTORY_MARK, isBlank, joinLines, toLines } from './normalize.ts';
import { findHistoryStart, trailingQuoteStart } from './quotes.ts';
import { signatureStart } from './signatures.ts';

type Tag = 'body' | 'quote' | 'history' | 'forward' | 'signature';

export type TextCleanOptions = {
  subject?: string | null | undefined;
  stripQuotes: boolean;
  stripSignature: boolean;
};

export type TextCleanResult = { text: string; quotesStripped: boolean; signatureStripped: boolean };

export function cleanText(text: string, options: TextCleanOptions): TextCleanResult {
  const lines = toLines(text);
  const tags: Tag[] = new Array<Tag>(lines.length).fill('body');
  const mark = (from: number, to: number, tag: Tag): void => {
    for (let i = from; i < to; i++) tags[i] = tag;
  };

  let end = lines.length;
  const history = findHistoryStart(lines, options.subject);
  if (history) {
    mark(history.at, end, history.kind);
    end = history.at;
  }
  for (let round = 0; round < STRIP_ROUNDS_MAX; round++) {
    const before = end;
    const quote = trailingQuoteStart(lines, end);
    mark(quote, end, 'quote');
    end = quote;
    const signature = signatureStart(lines, end);
    mark(signature, end, 'signature');
    end = signature;
    if (end === before) break;
  }

  const kept: string[] = [];
  let quotesStripped = false;
  let signatureStripped = false;
  let gap = false; // removed content between kept lines still separates paragraphs
  lines.forEach((line, i) => {
    const tag = tags[i] ?? 'body';
    const content = !isBlank(line) && line !== HISTORY_MARK;
    const drop = ((tag === 'quote' || tag === 'history') && options.stripQuotes) || (tag === 'signature' && options.stripSignature);
    if (drop) {
      if (tag === 'signature') signatureStripped ||= content;
      else quotesStripped ||= content;
      gap ||= content;
      return;
    }
    if (gap) kept.push('');
    gap = false;
    kept.push(line);
  });
  return { text: joinLines(kept), quotesStripped, signatureStripped };
}
