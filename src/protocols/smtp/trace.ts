// Trace fields added to an inbound message before it is stored: the Received header (RFC 5321
// §4.4) and the Authentication-Results header (RFC 8601), on top of the header block. Any
// Authentication-Results the message already carries under our own authserv-id is removed first
// (RFC 8601 §5): otherwise a sender could forge "dkim=pass" in our name.
import { TRACE_HELO_MAX } from './limits.ts';

export interface ReceivedInfo {
  helo: string;
  /** Reverse DNS name, or the address literal when there is none. */
  clientHostname: string;
  ip: string;
  byHost: string;
  /** ESMTP, ESMTPS, SMTP... */
  protocol: string;
  queueId: string;
  tls: { protocol: string; cipher: string } | null;
  /** Named only when the message has a single recipient (more would disclose Bcc recipients). */
  recipient: string | null;
  date: Date;
}

/** RFC 5322 date-time in UTC: "Fri, 20 Nov 2026 10:00:00 +0000". */
export function rfc5322Date(d: Date): string {
  return d.toUTCString().replace(/GMT$/, '+0000');
}

/** Client-supplied names go into a header: keep host-name characters only. */
function clean(s: string): string {
  return s.replace(/[^A-Za-z0-9.\-_:[\]]/g, '').slice(0, TRACE_HELO_MAX) || 'unknown';
}

export function receivedHeader(r: ReceivedInfo): string {
  const remote = r.clientHostname && !r.clientHostname.startsWith('[') ? `${clean(r.clientHostname)} [${r.ip}]` : `[${r.ip}]`;
  const lines = [`Received: from ${clean(r.helo)} (${remote})`, `\tby ${r.byHost} (Mailmux) with ${clean(r.protocol)} id ${r.queueId}`];
  if (r.tls) lines.push(`\t(version=${clean(r.tls.protocol)} cipher=${clean(r.tls.cipher)})`);
  if (r.recipient) lines.push(`\tfor <${r.recipient.replace(/[<>\r\n]/g, '')}>;`);
  else lines[lines.length - 1] += ';';
  lines.push(`\t${rfc5322Date(r.date)}`);
  return lines.join('\r\n');
}

/** Where the header block ends (index of the blank line), or the whole buffer when there is none. */
function headerEnd(raw: Buffer): number {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  if (crlf < 0) return lf < 0 ? raw.length : lf + 1;
  if (lf < 0) return crlf + 2;
  return Math.min(crlf + 2, lf + 1);
}

/** Removes Authentication-Results fields whose authserv-id is ours; other bytes are kept as they are. */
export function stripOwnAuthResults(raw: Buffer, authservId: string): Buffer {
  const end = headerEnd(raw);
  // latin1 maps bytes 1:1, so 8-bit header bytes survive the round trip unchanged.
  const head = raw.subarray(0, end).toString('latin1');
  if (!/^authentication-results[ \t]*:/im.test(head)) return raw;
  const lines = head.split(/(?<=\n)/);
  const kept: string[] = [];
  let dropping = false;
  const ours = authservId.toLowerCase();
  for (const line of lines) {
    if (/^[ \t]/.test(line)) {
      if (!dropping) kept.push(line);
      continue;
    }
    const m = /^authentication-results[ \t]*:[ \t]*([^;\r\n]*)/i.exec(line);
    // authserv-id may be followed by a version number or a comment: compare the first token.
    dropping = m !== null && (m[1] ?? '').trim().split(/[\s(]/)[0]?.toLowerCase() === ours;
    if (!dropping) kept.push(line);
  }
  return Buffer.concat([Buffer.from(kept.join(''), 'latin1'), raw.subarray(end)]);
}

/** Puts header fields (each possibly folded, without a trailing CRLF) above the message. */
export function prependHeaders(raw: Buffer, fields: string[]): Buffer {
  return Buffer.concat([Buffer.from(fields.map((f) => `${f}\r\n`).join(''), 'utf8'), raw]);
}
