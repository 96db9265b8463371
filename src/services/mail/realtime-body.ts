// The body of a message in a realtime event (MailboxRealtimeMessage.body): text and HTML, each cut
// to REALTIME_BODY_MAX_BYTES on a character boundary.
//
// The event log does not keep a copy of the bodies: the row a received message's event stores has
// `body: null`, and the frame sent on a stream (live or replayed) fills it from the message, which
// already holds them. A copy was the largest part of an event row (a third of the pages ingest
// wrote per message). A message deleted before a replay reaches it is replayed with null text
// and html: the server no longer has them.

/** Bytes of each body (text, html) carried in a realtime event. */
export const REALTIME_BODY_MAX_BYTES = 16_384;

export interface RealtimeBody {
  text: string | null;
  html: string | null;
  is_truncated: boolean;
  max_bytes: number;
}

function capBytes(s: string | null, max: number): { value: string | null; truncated: boolean } {
  if (s === null) return { value: null, truncated: false };
  // At most 4 bytes a character: short strings need no encoding to be measured.
  if (s.length * 3 <= max) return { value: s, truncated: false };
  const buf = Buffer.from(s, 'utf8');
  if (buf.byteLength <= max) return { value: s, truncated: false };
  // Cut on a character boundary: drop a partial UTF-8 sequence at the end.
  let end = max;
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return { value: buf.subarray(0, end).toString('utf8'), truncated: true };
}

/** The body of a stored message as an event carries it; null text and html when it is gone. */
export function realtimeBody(message: { text_body: string | null; html_body: string | null } | null | undefined): RealtimeBody {
  const text = capBytes(message?.text_body ?? null, REALTIME_BODY_MAX_BYTES);
  const html = capBytes(message?.html_body ?? null, REALTIME_BODY_MAX_BYTES);
  return { text: text.value, html: html.value, is_truncated: text.truncated || html.truncated, max_bytes: REALTIME_BODY_MAX_BYTES };
}
