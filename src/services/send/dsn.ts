// Delivery status notifications (RFC 3464): the bounce a sender finds in its inbox when a message
// could not be delivered, as multipart/report with a human-readable part, the machine-readable
// message/delivery-status and the original header block (text/rfc822-headers).
import { randomString } from '../../core/ids.ts';

export interface DsnRecipient {
  email: string;
  /** SMTP reply or our reason. */
  diagnostic: string;
  /** The remote reply code when there was one. */
  code: number | null;
  remoteMta: string | null;
}

/** Enhanced status of a failure: the one in the reply, else 5.0.0 / 4.4.7 (expired). */
function statusOf(r: DsnRecipient, expired: boolean): string {
  const m = /\b([45])\.(\d{1,3})\.(\d{1,3})\b/.exec(r.diagnostic);
  if (m) return `5.${m[2]}.${m[3]}`;
  return expired ? '4.4.7' : r.code && r.code >= 500 ? '5.0.0' : '5.4.0';
}

function headerBlock(raw: Buffer): string {
  const text = raw.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  return (end < 0 ? text : text.slice(0, end)).replace(/\r?\n/g, '\r\n');
}

const clean = (s: string): string => s.replace(/[\r\n]+/g, ' ').slice(0, 900);

export function buildDsn(input: {
  reportingMta: string;
  postmaster: string;
  to: string;
  original: Buffer;
  originalSubject: string | null;
  originalMessageId: string | null;
  arrivalDate: Date;
  recipients: DsnRecipient[];
  expired: boolean;
  now: Date;
}): Buffer {
  const boundary = `mailmux-dsn-${randomString(24)}`;
  const list = input.recipients.map((r) => `  ${r.email}\r\n    ${clean(r.diagnostic)}`).join('\r\n');
  const human = [
    `This is the mail system at ${input.reportingMta}.`,
    '',
    input.expired
      ? 'Your message could not be delivered in the time allowed; the mail system gave up on these recipients:'
      : 'Your message could not be delivered to these recipients:',
    '',
    list,
    '',
    `Subject: ${clean(input.originalSubject ?? '')}`,
  ].join('\r\n');
  const perRecipient = input.recipients
    .map((r) => [
      `Final-Recipient: rfc822; ${r.email}`,
      'Action: failed',
      `Status: ${statusOf(r, input.expired)}`,
      ...(r.remoteMta ? [`Remote-MTA: dns; ${r.remoteMta}`] : []),
      `Diagnostic-Code: smtp; ${clean(r.diagnostic)}`,
      `Last-Attempt-Date: ${input.now.toUTCString()}`,
    ].join('\r\n'))
    .join('\r\n\r\n');
  const status = [`Reporting-MTA: dns; ${input.reportingMta}`, `Arrival-Date: ${input.arrivalDate.toUTCString()}`, '', perRecipient].join('\r\n');
  const lines = [
    `From: Mail Delivery System <${input.postmaster}>`,
    `To: ${input.to}`,
    `Subject: Undelivered Mail Returned to Sender`,
    `Date: ${input.now.toUTCString()}`,
    `Message-ID: <dsn.${randomString(24)}@${input.reportingMta}>`,
    ...(input.originalMessageId ? [`In-Reply-To: <${input.originalMessageId}>`, `References: <${input.originalMessageId}>`] : []),
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated message.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    'Content-Description: Notification',
    '',
    human,
    '',
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    'Content-Description: Delivery report',
    '',
    status,
    '',
    `--${boundary}`,
    'Content-Type: text/rfc822-headers',
    'Content-Description: Undelivered message headers',
    '',
    headerBlock(input.original),
    '',
    `--${boundary}--`,
    '',
  ];
  return Buffer.from(lines.join('\r\n'), 'utf8');
}
