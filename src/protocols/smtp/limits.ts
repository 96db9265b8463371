// Fixed limits of the SMTP listeners, each with its reason. The operator-tunable ones (message
// size, recipients, commands, connections, idle time) live in the configuration.
import type { SMTPServerDataStream } from 'smtp-server';

/**
 * Longest command line accepted. RFC 5321 §4.5.3.1.4 allows 512 octets plus what extensions add
 * (§4.5.3.1.6): SIZE, BODY, SMTPUTF8 and long UTF-8 addresses fit easily in 2 KB. A longer line
 * gets 421 and the connection closes (smtp-server cannot resynchronise mid-line).
 */
export const SMTP_COMMAND_LINE_MAX = 2048;

/**
 * On shutdown, sessions that are idle are told 421 at once; a session in the middle of DATA gets
 * this long to finish so an almost-received message is not thrown away.
 */
export const SMTP_CLOSE_GRACE_MS = 30_000;

/** Longest HELO name copied into a Received header (a DNS name is at most 253 octets). */
export const TRACE_HELO_MAX = 255;

/**
 * Reads a DATA stream whole, up to `max` bytes; null when the message is larger. Past the limit the
 * rest is read and dropped: the client is owed a 552 after its final dot.
 */
export async function readMessage(stream: SMTPServerDataStream, max: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size <= max) chunks.push(chunk);
  }
  return stream.sizeExceeded || size > max ? null : Buffer.concat(chunks, size);
}
