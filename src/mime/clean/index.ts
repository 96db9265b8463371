// Clean message content for agents: the body of the Sendmux MailboxMessageContent object.
// One entry point, cleanBody(), pure and deterministic (same input and options, same
// output), bounded in time and memory by the limits in ./limits.ts.
//
// Choices (see also the rules at the top of quotes.ts, signatures.ts, html-to-text.ts, links.ts):
// - part=auto prefers text/plain; it falls back to the HTML part converted to text when
//   the text part is missing, empty, or a stub ("View this email in your browser").
//   part=text / part=html use only that part (text is null when it is absent).
// - format says which part the text came from: 'text' (text/plain) or 'html' (converted).
//   It is never null, although the schema's type allows it, because its enum does not:
//   with no usable part, text is null and format is the part asked for ('text' for auto).
// - html is the message's HTML part as received (not cleaned), only with includeHtml,
//   truncated at maxBodyChars like the text.
// - Characters are UTF-16 code units (String.length); truncation never splits a surrogate
//   pair, and truncated_at_chars is the length of the returned text.
// - Input beyond TEXT_INPUT_MAX_CHARS / HTML_INPUT_MAX_CHARS is not read; the body is then
//   reported as truncated.
import { HTML_INPUT_MAX_CHARS, STUB_TEXT_MAX_CHARS, TEXT_INPUT_MAX_CHARS } from './limits.ts';
import { cleanText } from './clean-text.ts';
import { htmlToText } from './html-to-text.ts';
import { HISTORY_MARK } from './normalize.ts';
import { extractLinks } from './links.ts';
import { truncateChars } from './truncate.ts';

export type CleanPart = 'auto' | 'text' | 'html';

export type CleanOptions = {
  part: CleanPart;
  /** Spec: 1..1,000,000; 100,000 per message and 25,000 per thread message by default. */
  maxBodyChars: number;
  stripSignature: boolean;
  stripQuotes: boolean;
  includeLinks: boolean;
  includeHtml: boolean;
};

export type CleanInput = {
  /** Decoded text/plain part, or null when the message has none. */
  text: string | null;
  /** Decoded text/html part, or null when the message has none. */
  html: string | null;
  /** The message's Subject; tells an Outlook forward ("FW:") from a reply ("RE:"). */
  subject?: string | null;
};

/** The `body` object of MailboxMessageContent (openapi-app.json), field for field. */
export type CleanBody = {
  format: 'text' | 'html' | null;
  text: string | null;
  html: string | null;
  is_truncated: boolean;
  truncated_at_chars: number | null;
  signature_stripped: boolean;
  quotes_stripped: boolean;
  extracted_links: string[];
};

/** Spec defaults for GET /mailbox/messages/{id}/content. */
export const DEFAULT_CLEAN_OPTIONS: Readonly<CleanOptions> = Object.freeze({
  part: 'auto',
  maxBodyChars: 100_000,
  stripSignature: true,
  stripQuotes: true,
  includeLinks: true,
  includeHtml: false,
});

const STUB =
  /\b(?:view|read|open|see|display)\b.{0,40}\b(?:in|on)\s(?:your|a|the)\s(?:web\s?)?browser\b|\bweb\s?version\b|\bonline version\b|\bhtml[- ](?:version|format|e-?mail|compatible|capable)\b|\bdoes not support html\b|\b(?:enable|switch to) html\b|im browser (?:ansehen|anzeigen|öffnen|lesen)|\bweb-?version\b|dans (?:votre|le|un) navigateur|version en ligne|en (?:tu|su|el) navegador|no (?:seu )?navegador|nel (?:tuo )?browser|in (?:je|uw) browser|i (?:din )?webbläsare|i (?:din )?browser|w przeglądarce|ブラウザで(?:表示|見る)|在浏览器中查看/i;

/** A text part that says nothing beyond "open the HTML version" (or nothing at all). */
export function isStubText(text: string): boolean {
  // A stub is a line or two; anything longer is content unless it is all whitespace.
  if (text.length > STUB_TEXT_MAX_CHARS * 20) return text.trim() === '';
  const rest = text.replace(/https?:\/\/\S+/g, ' ').replace(/[\s*()<>[\]:.|_-]+/g, ' ').trim();
  if (rest === '') return true;
  return rest.length <= STUB_TEXT_MAX_CHARS && STUB.test(rest);
}

function chooseSource(input: CleanInput, part: CleanPart): { format: 'text' | 'html'; raw: string } | null {
  const { text, html } = input;
  if (part === 'text') return text === null ? null : { format: 'text', raw: text };
  if (part === 'html') return html === null ? null : { format: 'html', raw: html };
  if (text !== null && !isStubText(text)) return { format: 'text', raw: text };
  if (html !== null) return { format: 'html', raw: html };
  return text === null ? null : { format: 'text', raw: text };
}

export function cleanBody(input: CleanInput, options: CleanOptions): CleanBody {
  const max = Math.max(0, Math.floor(options.maxBodyChars));
  const html = options.includeHtml && input.html !== null ? truncateChars(input.html, max) : null;
  const source = chooseSource(input, options.part);
  if (!source) {
    return {
      format: options.part === 'html' ? 'html' : 'text',
      text: null,
      html: html?.text ?? null,
      is_truncated: html?.truncated ?? false,
      truncated_at_chars: html?.truncated ? html.text.length : null,
      signature_stripped: false,
      quotes_stripped: false,
      extracted_links: [],
    };
  }
  const clipped = truncateChars(source.raw, source.format === 'html' ? HTML_INPUT_MAX_CHARS : TEXT_INPUT_MAX_CHARS);
  // Converted HTML gets the text bound too: quote prefixes can make it longer than its source.
  const converted = source.format === 'html' ? truncateChars(htmlToText(clipped.text), TEXT_INPUT_MAX_CHARS) : null;
  // U+E000 is the converter's history mark; a sender's own must not pass for one.
  const plain = converted ? converted.text : clipped.text.replaceAll(HISTORY_MARK, '');
  const cleaned = cleanText(plain, { subject: input.subject, stripQuotes: options.stripQuotes, stripSignature: options.stripSignature });
  const out = truncateChars(cleaned.text, max);
  const textCut = out.truncated || clipped.truncated || (converted?.truncated ?? false);
  const isTruncated = textCut || (html?.truncated ?? false);
  return {
    format: source.format,
    text: out.text,
    html: html?.text ?? null,
    is_truncated: isTruncated,
    truncated_at_chars: textCut ? out.text.length : html?.truncated ? html.text.length : null,
    signature_stripped: cleaned.signatureStripped,
    quotes_stripped: cleaned.quotesStripped,
    extracted_links: options.includeLinks ? extractLinks(out.text) : [],
  };
}
