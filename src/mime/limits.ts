// Named limits for parsing untrusted MIME, each with the reason for its value. Every loop over
// message input in src/mime is bounded by one of these, so a hostile message costs at most linear
// work in its size plus a constant.

/**
 * MIME nesting depth (multiparts and message/rfc822 both count). Real mail stays under ~10 levels;
 * 32 leaves room for forwarded-forwarded digests while capping recursion and the size of the
 * IMAP BODYSTRUCTURE. Deeper containers become opaque application/octet-stream leaves.
 */
export const MIME_DEPTH_MAX = 32;

/**
 * MIME parts per message, containers included. Each part costs an index entry, a BODYSTRUCTURE
 * node and possibly a decode; mailing-list digests reach a few hundred, nothing legitimate needs
 * more. Later parts are folded into the epilogue of the multipart that overflowed.
 */
export const MIME_PARTS_MAX = 1000;

/**
 * Boundary parameter length. RFC 2046 §5.1.1 allows 1..70 characters; we accept up to 200 for
 * sloppy senders. Matching cost grows with the boundary, so a multipart with a longer one is read
 * as text/plain, as RFC 2045 §5.2 advises for a syntactically invalid Content-Type.
 */
export const BOUNDARY_MAX_LENGTH = 200;

/**
 * Header fields kept in the `headers` list of the top-level block. Typical mail has 20-80 (long
 * Received chains ~150); the list is stored in the index row, so it must stay small.
 */
export const HEADER_FIELDS_MAX = 500;

/**
 * Bytes kept of one header value. RFC 5322 lines are 998 octets, but folded To/Cc/References
 * legitimately reach tens of KB; values past this are cut (the raw blob keeps the whole header).
 */
export const HEADER_VALUE_MAX_BYTES = 64 * 1024;

/** Total value bytes kept in the `headers` list; bounds the index row however many fields arrive. */
export const HEADER_KEPT_MAX_BYTES = 256 * 1024;

/** Parameters read from one structured header (Content-Type, Content-Disposition). RFC 2231 continuations count singly. */
export const HEADER_PARAMS_MAX = 64;

/** Addresses kept per address field. Bounds envelope and index-row size for a mass-mailed To. */
export const ADDRESSES_MAX = 1000;

/**
 * Message-IDs kept from References. Threading needs the root and the most recent ancestors, so the
 * first id and the last REFERENCES_MAX - 1 are kept (RFC 5322 §3.6.4 suggests trimming the middle).
 */
export const REFERENCES_MAX = 100;

/** Longest Message-ID accepted (RFC 5322 line limit); longer ones are garbage or an attack on indexes. */
export const MESSAGE_ID_MAX_LENGTH = 998;

/** Characters of the preview (JMAP Email.preview allows up to 256; Sendmux shows about 200). */
export const PREVIEW_MAX_CHARS = 200;

/**
 * HTML characters scanned for <head>, <style> and <script> blocks when a preview must come from
 * HTML. Newsletters put tens of KB of CSS before the first visible word; the scan is linear.
 */
export const PREVIEW_HTML_SCAN_MAX_CHARS = 1024 * 1024;

/**
 * HTML characters (after removing those blocks) converted to text for the preview. The preview
 * needs only the start, and HTML-to-text on hostile markup (deeply nested lists) costs ~3 µs per
 * character, so 64 KiB keeps the worst case near 200 ms.
 */
export const PREVIEW_HTML_INPUT_MAX_CHARS = 64 * 1024;

/** Problems reported per message; one hostile message can repeat the same fault thousands of times. */
export const PROBLEMS_MAX = 50;
