// The inbound SMTP error map: every refusal Mailmux makes, as a reply code plus an RFC 3463
// enhanced status code, 4xx when the sender should retry. Services say why (protocol-neutral
// reasons); this file alone says how that sounds on the wire.
import type { RecipientRefusal } from '../../services/mail/recipients.ts';

/** An error smtp-server turns into a reply: `responseCode` and a message led by the enhanced code. */
export class SmtpReply extends Error {
  readonly responseCode: number;
  readonly enhancedCode: string;
  constructor(code: number, enhanced: string, text: string) {
    super(`${enhanced} ${text}`);
    this.name = 'SmtpReply';
    this.responseCode = code;
    this.enhancedCode = enhanced;
  }
}

/** A reply text that already carries its enhanced status code ("5.2.1 ..."). */
export const ENHANCED_PREFIX = /^[245]\.\d{1,3}\.\d{1,3} /;

export type QuotaReply = 'temporary' | 'permanent';

export function overQuota(mode: QuotaReply): SmtpReply {
  return mode === 'permanent'
    ? new SmtpReply(552, '5.2.2', 'Mailbox full: message exceeds the recipient\'s storage quota')
    : new SmtpReply(452, '4.2.2', 'Mailbox full, try again later');
}

export function recipientReply(reason: RecipientRefusal, quota: QuotaReply): SmtpReply {
  switch (reason) {
    case 'relay_denied':
      return new SmtpReply(550, '5.7.1', 'Relay access denied: this server does not receive mail for that domain');
    case 'unknown_recipient':
      return new SmtpReply(550, '5.1.1', 'Recipient address rejected: no such mailbox');
    case 'mailbox_inactive':
      return new SmtpReply(550, '5.2.1', 'Mailbox disabled, not accepting messages');
    case 'sender_filtered':
      return new SmtpReply(550, '5.7.1', 'Sender address rejected by the recipient\'s sender filter');
    case 'over_quota':
      return overQuota(quota);
  }
}

export const REPLIES = {
  tooManyCommands: () => new SmtpReply(421, '4.7.0', 'Too many commands in one session, closing connection'),
  shuttingDown: () => new SmtpReply(421, '4.3.2', 'Service shutting down, try again later'),
  localError: () => new SmtpReply(451, '4.3.0', 'Temporary local problem, try again later'),
  tooLarge: (max: number) => new SmtpReply(552, '5.3.4', `Message exceeds the maximum size of ${max} bytes`),
  spamRejected: () => new SmtpReply(550, '5.7.1', 'Message rejected as spam'),
  spamDeferred: () => new SmtpReply(451, '4.7.1', 'Message deferred by content filter, try again later'),
} as const;
