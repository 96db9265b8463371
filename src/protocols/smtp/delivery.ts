// What happens after the DATA dot: authenticate the sender, score spam, add the trace headers,
// hand the message to ingest once for every accepted mailbox (one blob, one index row per
// mailbox), and write the incoming log. The caller answers 250 only after this resolves, i.e.
// after ingest's transaction has committed.
import type { Services } from '../../services/index.ts';
import { type IncomingLogsService, type RefusedDelivery } from '../../services/mail/incoming-logs.ts';
import type { AcceptedRecipient } from '../../services/mail/recipients.ts';
import type { SpamService } from '../../services/mail/spam.ts';
import { overQuota, recipientReply, REPLIES, type SmtpReply } from './replies.ts';
import type { Inspected, InspectTask } from './inspect.ts';
import { receivedHeader } from './trace.ts';

/** One mail transaction: MAIL FROM, the recipients accepted at RCPT, and its queue id. */
export interface Transaction {
  queueId: string;
  sender: string;
  declaredSize: number | null;
  /** Accepted recipients by lower-cased address. */
  accepted: Map<string, AcceptedRecipient>;
}

export interface ClientInfo {
  ip: string;
  helo: string;
  clientHostname: string;
  protocol: string;
  tls: { protocol: string; cipher: string } | null;
}

export interface DeliveryDeps {
  services: Services;
  /** Authenticates the sender, adds the trace headers and parses (in a worker thread when there are some). */
  inspect: (task: InspectTask) => Promise<Inspected>;
  spam: SpamService;
  logs: IncomingLogsService;
}

/** A successful DATA: the text for the 250 reply. */
export interface Delivered {
  text: string;
}

/** Logs refusals; a failure to log never changes the SMTP answer. */
export async function logRefusals(deps: DeliveryDeps, rows: RefusedDelivery[]): Promise<void> {
  if (rows.length === 0) return;
  try {
    await deps.logs.recordRefused(rows);
  } catch (err) {
    deps.services.log.error({ event: 'smtp.incoming_log_failed', err: (err as Error).message });
  }
}

function refusalsFor(tx: Transaction, reason: string, at: number, size: number | null, extra: { subject?: string | null; rfcMessageId?: string | null } = {}, only?: Set<string>): RefusedDelivery[] {
  return [...tx.accepted.values()]
    .filter((r) => !only || only.has(r.mailboxId))
    .map((r) => ({ mailboxId: r.mailboxId, mailboxEmail: r.mailboxEmail, recipient: r.address, sender: tx.sender, reason, sizeBytes: size, receivedAt: at, ...extra }));
}

/** The message arrived over the size limit: nothing is stored; the log says why. */
export async function refuseOversized(deps: DeliveryDeps, tx: Transaction, max: number): Promise<SmtpReply> {
  await logRefusals(deps, refusalsFor(tx, 'message_too_large', deps.services.clock.now(), tx.declaredSize));
  return REPLIES.tooLarge(max);
}

/**
 * Stores the message for every accepted recipient. Resolves with the 250 text, or rejects with the
 * SmtpReply to send (a 4xx when the sender should try again).
 */
export async function deliverMessage(deps: DeliveryDeps, tx: Transaction, client: ClientInfo, original: Buffer): Promise<Delivered> {
  const { services } = deps;
  const config = services.config;
  const recipients = [...tx.accepted.values()];
  const now = services.clock.now();

  const received = receivedHeader({
    helo: client.helo,
    clientHostname: client.clientHostname,
    ip: client.ip,
    byHost: config.hostname,
    protocol: client.protocol,
    queueId: tx.queueId,
    tls: client.tls,
    recipient: recipients.length === 1 ? (recipients[0]?.address ?? null) : null,
    date: new Date(now),
  });
  // Authentication, our trace headers, the parse of the message to store (inspect.ts).
  const { auth, raw, parsed: inspectedParse } = await deps.inspect({ original, ip: client.ip, helo: client.helo, sender: tx.sender, authservId: config.hostname, received });
  const spam = await deps.spam.classify({ raw: original, parsed: inspectedParse, auth, ip: client.ip, helo: client.helo, sender: tx.sender, recipients: recipients.map((r) => r.address), queueId: tx.queueId });
  if (spam.action === 'reject' || spam.action === 'defer') {
    services.log.info({ event: 'smtp.spam_refused', queue_id: tx.queueId, action: spam.action, score: spam.score, source: spam.source });
    await logRefusals(deps, refusalsFor(tx, spam.action === 'reject' ? 'spam_rejected' : 'spam_deferred', now, original.byteLength));
    throw spam.action === 'reject' ? REPLIES.spamRejected() : REPLIES.spamDeferred();
  }

  const targets = [...new Set(recipients.map((r) => r.mailboxId))].map((mailboxId) => ({
    mailboxId,
    recipients: recipients.filter((r) => r.mailboxId === mailboxId).map((r) => r.address),
  }));
  let result;
  try {
    result = await services.ingest.deliver({
      raw,
      parsed: inspectedParse,
      targets,
      receivedAt: now,
      spam: { isSpam: spam.isSpam, score: spam.score },
      authResults: auth.summary,
      enforceQuota: true,
      announce: { sender: tx.sender === '' ? null : tx.sender },
      // The accepted rows commit with the messages: no second write (and fsync) before the 250.
      incomingLog: { sender: tx.sender === '' ? null : tx.sender },
    });
  } catch (err) {
    services.log.error({ event: 'smtp.ingest_failed', queue_id: tx.queueId, err: (err as Error).message });
    throw REPLIES.localError();
  }

  const parsed = result.parsed;
  for (const reason of ['over_quota', 'mailbox_inactive'] as const) {
    const ids = new Set(result.refused.filter((r) => r.reason === reason).map((r) => r.mailboxId));
    if (ids.size > 0) await logRefusals(deps, refusalsFor(tx, reason, now, raw.byteLength, { subject: parsed.subject, rfcMessageId: parsed.message_id }, ids));
  }

  services.log.info({
    event: 'smtp.received',
    queue_id: tx.queueId,
    mailboxes: result.delivered.length,
    refused: result.refused.length,
    size: raw.byteLength,
    spam: spam.isSpam,
    spam_score: spam.score,
    spam_source: spam.source,
    spf: auth.spf,
    dkim: auth.dkim,
    dmarc: auth.dmarc.result,
  });

  if (result.delivered.length === 0) {
    // Every mailbox refused between RCPT and now (quota used up by a concurrent message, or a suspend).
    throw result.refused.some((r) => r.reason === 'over_quota') ? overQuota(config.smtp.quotaReply) : recipientReply('mailbox_inactive', config.smtp.quotaReply);
  }
  // Recipients refused here while others were stored get no bounce: a single SMTP reply covers the
  // whole transaction, and failing it would make the sender deliver the stored copies again.
  return { text: `Message accepted, queued as ${tx.queueId}` };
}
