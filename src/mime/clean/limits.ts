// Named bounds for the body cleaner. Mail is hostile input: every loop and regex in
// src/mime/clean works on at most these many characters or lines, so one message can
// never hold a worker for long, whatever its size or shape.

/** Characters of text/plain read (spec: max_body_chars tops out at 1,000,000; 2x leaves room for stripped quotes). */
export const TEXT_INPUT_MAX_CHARS = 2_000_000;
/** Characters of HTML read; markup is typically 3-10x the text it carries. */
export const HTML_INPUT_MAX_CHARS = 4_000_000;
/** Elements deeper than this are flattened into their ancestor; real mail rarely nests past 40. */
export const HTML_MAX_DEPTH = 256;
/** Elements built per document; large newsletters have a few thousand. Later tags are
 * ignored (their text is still read), which bounds memory for hostile markup. */
export const HTML_MAX_ELEMENTS = 100_000;
/** Nested quote/list prefixes written per line ("> > - "); deeper levels reuse the deepest. */
export const HTML_MAX_PREFIX_DEPTH = 16;
/** Anchor text compared with its href is cut here: enough to recognise a URL written out. */
export const LINK_TEXT_MAX_CHARS = 2048;
/** Lines scanned from the top for a reply header, forward marker or Outlook header block. */
export const QUOTE_SCAN_MAX_LINES = 5000;
/** Longer lines are never treated as reply headers (real ones are under ~250 characters). */
export const HEADER_LINE_MAX_CHARS = 400;
/** A reply header wrapped by the sender's client spans at most this many lines. */
export const ATTRIBUTION_MAX_LINES = 3;
/** Label lines after "From:" looked at when deciding whether an Outlook header block starts. */
export const HEADER_BLOCK_MAX_LINES = 8;
/** Non-blank lines after a "-- " delimiter for it to count as a signature. */
export const SIGNATURE_DELIMITED_MAX_LINES = 40;
/** Non-blank lines after a bare "--" (no trailing space) for it to count as a signature. */
export const SIGNATURE_BARE_DASH_MAX_LINES = 12;
/** A mobile "Sent from my ..." line must be among the last this many non-blank lines. */
export const MOBILE_LINE_WINDOW = 3;
/** Non-blank lines searched upwards from the end for a sign-off ("Best regards,"). */
export const SIGNOFF_SCAN_LINES = 16;
/** Contact block after the sender's name: at most this many non-blank lines... */
export const CONTACT_BLOCK_MAX_LINES = 10;
/** ...each at most this long (longer lines are prose, not contact details). */
export const CONTACT_LINE_MAX_CHARS = 120;
/** A trailing legal disclaimer paragraph has at most this many lines. */
export const DISCLAIMER_MAX_LINES = 15;
/** A text part this short (after removing URLs) may be a "view in browser" stub. */
export const STUB_TEXT_MAX_CHARS = 200;
/** Links listed in extracted_links. */
export const EXTRACTED_LINKS_MAX = 1000;
/** Rounds of "strip trailing quote, then signature"; each round removes one layer. */
export const STRIP_ROUNDS_MAX = 4;
