// Inbound recipient policy: which hosted mailbox an envelope recipient reaches (plus-addressing
// folded), and whether this sender may deliver to it now. Answers are protocol-neutral reasons;
// the SMTP front-end maps them to reply codes (src/protocols/smtp/replies.ts).
import { normaliseEmail, splitAddress, stripPlusTag } from '../../mime/addresses.ts';
import type { MailboxRow } from '../../store/index.ts';
import type { ServiceContext } from '../context.ts';
import { senderAllowed, type FiltersService } from '../filters.ts';

/** Why a recipient is refused. */
export type RecipientRefusal =
  /** The domain is not one Mailmux receives for (not hosted, not verified, or send_only). */
  | 'relay_denied'
  /** A hosted domain, but no mailbox has this address. */
  | 'unknown_recipient'
  /** The mailbox is suspended, or deleted and still being purged. */
  | 'mailbox_inactive'
  /** The mailbox's (or else its domain's) sender filter refuses the envelope sender. */
  | 'sender_filtered'
  /** The message would not fit in the mailbox's quota. */
  | 'over_quota';

export interface AcceptedRecipient {
  ok: true;
  /** The address as the client wrote it, lower-cased (plus tag kept). */
  address: string;
  mailboxId: string;
  mailboxEmail: string;
  teamId: string;
}

export interface RefusedRecipient {
  ok: false;
  address: string;
  reason: RecipientRefusal;
  /** Set when the address reached a mailbox (its owner can see why mail was refused). */
  mailbox: { id: string; email: string; teamId: string } | null;
  /** Whether this refusal belongs in the incoming log (relay probes for foreign domains do not). */
  logged: boolean;
}

export type RecipientVerdict = AcceptedRecipient | RefusedRecipient;

export interface RecipientQuery {
  /** RCPT TO address. */
  recipient: string;
  /** MAIL FROM address; '' for the null sender (bounces). */
  sender: string;
  /** MAIL FROM SIZE=, when the client declared it. */
  declaredSize: number | null;
}

export class RecipientsService {
  private readonly ctx: ServiceContext;
  private readonly filters: FiltersService;

  constructor(ctx: ServiceContext, filters: FiltersService) {
    this.ctx = ctx;
    this.filters = filters;
  }

  /** The hosted mailbox behind an address, live first, else a deleted one still being purged. */
  private async mailboxFor(address: string): Promise<MailboxRow | undefined> {
    return (await this.ctx.store.mailboxes.liveByEmail(address)) ?? (await this.ctx.store.mailboxes.pendingCleanupByEmail(address));
  }

  async check(q: RecipientQuery): Promise<RecipientVerdict> {
    const address = normaliseEmail(q.recipient);
    const refuse = (reason: RecipientRefusal, mailbox: MailboxRow | null, logged = true): RefusedRecipient => ({
      ok: false,
      address,
      reason,
      mailbox: mailbox ? { id: mailbox.id, email: mailbox.email, teamId: mailbox.team_id } : null,
      logged,
    });
    const parts = splitAddress(address);
    if (!parts) return refuse('relay_denied', null, false);
    // Mail is received only for domains whose MX points here on purpose: verified send_receive ones.
    if (!(await this.ctx.store.domains.receivesMail(parts.domain))) return refuse('relay_denied', null, false);
    const mailbox = await this.mailboxFor(stripPlusTag(address));
    if (!mailbox) return refuse('unknown_recipient', null);
    if (mailbox.status !== 'active') return refuse('mailbox_inactive', mailbox);

    const filter = await this.filters.effectiveFilter(mailbox.id, mailbox.domain_id);
    if (!senderAllowed(filter, q.sender)) return refuse('sender_filtered', mailbox);

    // Without SIZE= the message size is unknown: refuse only a mailbox with no room left at all
    // (ingest enforces the exact quota once the message has arrived).
    if (mailbox.quota_bytes !== null) {
      const needed = q.declaredSize ?? 1;
      if (mailbox.used_bytes + needed > mailbox.quota_bytes) return refuse('over_quota', mailbox);
    }
    return { ok: true, address, mailboxId: mailbox.id, mailboxEmail: mailbox.email, teamId: mailbox.team_id };
  }
}
