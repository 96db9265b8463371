// The hand-off from every sending front-end (Mailbox API send, Sending API, SMTP submission) to
// outbound delivery: the Sent copy, the submission, one queue row per recipient and the delivery
// log commit in one transaction (through ingest), then the outbound worker is woken.
import { iso } from '../../core/clock.ts';
import { AppError, invalidParameter } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { normaliseEmail, splitAddress } from '../../mime/addresses.ts';
import type { OutboundRecipientInsert, Repos } from '../../store/index.ts';
import type { ServiceContext } from '../context.ts';
import type { IngestService } from '../mail/ingest.ts';

export interface SubmitInput {
  /** The sending mailbox (must be active, else AppError 'insufficient_permissions'). */
  mailboxId: string;
  /** The complete RFC 5322 message, with Message-ID and Date, not yet DKIM-signed. */
  raw: Buffer;
  /** MAIL FROM: the mailbox address (or one it may send as). */
  envelopeFrom: string;
  /** Envelope recipients (to + cc + bcc), de-duplicated, as given. */
  recipients: string[];
  source: 'mailbox_api' | 'sending_api' | 'smtp';
  identityId?: string | null;
  /** msg_ id replied to: that message gets $answered. */
  inReplyToMessageId?: string | null;
  /** (idempotency is handled by the HTTP layer) */
  idempotencyScope?: never;
}

export interface SubmitResult {
  /** sub_… */
  submissionId: string;
  /** eml_…: the Sending API message id, also the delivery-log correlation. */
  emailId: string;
  /** msg_…: the Sent copy. */
  messageId: string;
  threadId: string;
}

/** Recipients one submission may carry (RFC 5321 asks servers to take at least 100). */
export const SUBMIT_MAX_RECIPIENTS = 1000;

export class OutboundService {
  private readonly ctx: ServiceContext;
  private readonly ingest: IngestService;
  private readonly wakers = new Set<() => void>();

  constructor(ctx: ServiceContext, ingest: IngestService) {
    this.ctx = ctx;
    this.ingest = ingest;
  }

  /** The outbound worker registers here to hear of new queue rows committed in this process. */
  onQueued(fn: () => void): () => void {
    this.wakers.add(fn);
    return () => this.wakers.delete(fn);
  }

  wake(): void {
    for (const fn of this.wakers) {
      try {
        fn();
      } catch (err) {
        this.ctx.log.error({ event: 'outbound.wake_failed', err: (err as Error).message });
      }
    }
  }

  async submit(input: SubmitInput): Promise<SubmitResult> {
    const mailbox = await this.ctx.store.mailboxes.get(input.mailboxId);
    if (!mailbox || mailbox.status !== 'active') throw new AppError('insufficient_permissions', 'The sending mailbox is not active');
    const recipients: string[] = [];
    const seen = new Set<string>();
    for (const r of input.recipients) {
      const address = normaliseEmail(r);
      if (!splitAddress(address)) throw invalidParameter(`Recipient ${JSON.stringify(r)} is not an email address`, 'recipients');
      if (seen.has(address)) continue;
      seen.add(address);
      recipients.push(address);
    }
    if (recipients.length === 0) throw invalidParameter('At least one recipient is required', 'recipients');
    if (recipients.length > SUBMIT_MAX_RECIPIENTS) throw invalidParameter(`At most ${SUBMIT_MAX_RECIPIENTS} recipients`, 'recipients');
    const envelopeFrom = normaliseEmail(input.envelopeFrom);

    const now = this.ctx.clock.now();
    const nowIso = iso(now);
    const sendAt = iso(now + this.ctx.config.outbound.undoSeconds * 1000);
    const submissionId = newId('sub');
    const emailId = newId('eml');
    const logId = newId('dlog');
    let sentCopy: { messageId: string; threadId: string } | null = null;

    await this.ingest.deliver({
      raw: input.raw,
      receivedAt: now,
      targets: [{ mailboxId: mailbox.id, folderRole: 'sent', keywords: ['$seen'] }],
      inTransaction: async (tx, delivered, parsed) => {
        const copy = delivered.find((d) => d.mailboxId === mailbox.id);
        if (!copy) throw new AppError('insufficient_permissions', 'The sending mailbox is not active');
        sentCopy = { messageId: copy.messageId, threadId: copy.threadId };
        const headerTo = new Set(parsed.to.map((a) => a.email.toLowerCase()));
        const headerCc = new Set(parsed.cc.map((a) => a.email.toLowerCase()));
        const identityId = input.identityId ?? (await tx.identities.listForMailbox(mailbox.id))[0]?.id ?? null;
        await tx.submissions.insert({
          id: submissionId,
          team_id: mailbox.team_id,
          mailbox_id: mailbox.id,
          email_id: emailId,
          log_id: logId,
          message_id: copy.messageId,
          thread_id: copy.threadId,
          identity_id: identityId,
          source: input.source,
          envelope_from: envelopeFrom,
          rcpt_to: JSON.stringify(recipients),
          undo_status: 'pending',
          send_at: sendAt,
          raw: input.raw,
          size_bytes: input.raw.byteLength,
          dsn_blob_ids: '[]',
          created_at: nowIso,
          updated_at: nowIso,
        });
        const rows: OutboundRecipientInsert[] = recipients.map((email) => ({
          submission_id: submissionId,
          team_id: mailbox.team_id,
          mailbox_id: mailbox.id,
          email,
          rcpt_type: headerTo.has(email) ? 'to' : headerCc.has(email) ? 'cc' : 'bcc',
          domain: splitAddress(email)!.domain,
          status: 'queued',
          smtp_reply: null,
          route: null,
          provider_id: null,
          attempts: 0,
          next_attempt_at: sendAt,
          lease_owner: null,
          first_deferred_at: null,
          final_at: null,
          created_at: nowIso,
          updated_at: nowIso,
        }));
        await tx.outbound.enqueue(rows);
        const firstTo = parsed.to[0]?.email ?? recipients[0] ?? null;
        await tx.deliveryLogs.insert({
          id: logId,
          team_id: mailbox.team_id,
          mailbox_id: mailbox.id,
          submission_id: submissionId,
          email_id: emailId,
          provider_id: null,
          provider_name: null,
          message_id: parsed.message_id,
          from_email: parsed.from?.email ?? envelopeFrom,
          to_email: firstTo,
          subject: parsed.subject,
          status: 'pending',
          status_reason: null,
          attempts: 0,
          sent_at: null,
          size_bytes: input.raw.byteLength,
          recipient_count: recipients.length,
          accepted_recipient_count: 0,
          rejected_recipient_count: 0,
          search_text: [recipients.join(' '), parsed.from?.email ?? '', envelopeFrom, parsed.subject ?? '', parsed.message_id ?? '', emailId].join(' ').toLowerCase(),
          created_at: nowIso,
          updated_at: nowIso,
        });
        await tx.changes.append({ teamId: mailbox.team_id, mailboxId: mailbox.id, type: 'submission', objectId: submissionId, kind: 'created' });
        if (input.inReplyToMessageId) await markAnswered(tx, mailbox.id, input.inReplyToMessageId, nowIso);
        tx.afterCommit(() => this.wake());
      },
    });
    const copy = sentCopy as { messageId: string; threadId: string } | null;
    if (!copy) throw new AppError('insufficient_permissions', 'The sending mailbox is not active');
    this.ctx.log.info({ event: 'outbound.submitted', submission_id: submissionId, email_id: emailId, mailbox_id: mailbox.id, recipients: recipients.length, source: input.source });
    return { submissionId, emailId, messageId: copy.messageId, threadId: copy.threadId };
  }

  /**
   * Cancels a submission inside its undo window (JMAP EmailSubmission undoStatus -> canceled): no
   * recipient is attempted, the stored copy of the message is dropped from the queue, and the
   * delivery log records the cancel. Outside the window (send_at reached) it is 409 conflict.
   */
  async cancel(mailboxId: string, submissionId: string): Promise<void> {
    await this.ctx.store.transaction(async (tx) => {
      const submission = await tx.submissions.get(submissionId);
      if (!submission || submission.mailbox_id !== mailboxId) throw new AppError('not_found', 'Submission not found');
      if (submission.undo_status === 'canceled') return;
      const now = iso(this.ctx.clock.now());
      if (submission.undo_status !== 'pending' || submission.send_at <= now) throw new AppError('conflict', 'The undo window of this submission is over: it can no longer be canceled');
      await tx.outbound.cancel(submission.id, now);
      await tx.submissions.update(submission.id, { undo_status: 'canceled', raw: null, updated_at: now });
      await tx.deliveryLogs.update(submission.log_id, { status: 'failed', status_reason: 'canceled by the sender inside the undo window', updated_at: now });
      await tx.changes.append({ teamId: submission.team_id, mailboxId, type: 'submission', objectId: submission.id, kind: 'updated' });
    });
  }
}

/** The message replied to gets $answered (if it is still in this mailbox). */
async function markAnswered(tx: Repos, mailboxId: string, messageId: string, at: string): Promise<void> {
  const row = await tx.messages.get(messageId);
  if (!row || row.mailbox_id !== mailboxId) return;
  const keywords = JSON.parse(row.keywords) as string[];
  if (keywords.includes('$answered')) return;
  await tx.messages.setKeywords(row, [...keywords, '$answered'], at);
  for (const f of await tx.messages.memberships(row.id)) await tx.folders.touched(f.folder_id, mailboxId);
}
