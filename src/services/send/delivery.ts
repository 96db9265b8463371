// One delivery attempt for the claimed queue rows of one submission: local recipients through
// ingest (exactly once: their rows are finished in the ingest transaction), the others through the
// mailbox's providers (weighted failover) or directly to their MX, DKIM-signed with the sending
// domain's key. Outcomes, events, the delivery log and any bounce (DSN into the sender's inbox)
// commit together.
import { iso } from '../../core/clock.ts';
import { splitAddress } from '../../mime/addresses.ts';
import type { DomainRow, OutboundOutcome, OutboundRecipientRow, ProviderRow, Repos, SubmissionMeta } from '../../store/index.ts';
import type { ServiceContext } from '../context.ts';
import type { EventsService, EventType } from '../events.ts';
import type { FiltersService } from '../filters.ts';
import type { IngestService } from '../mail/ingest.ts';
import { RecipientsService } from '../mail/recipients.ts';
import { signMessage, stripBcc } from './dkim.ts';
import { buildDsn, type DsnRecipient } from './dsn.ts';
import { MxResolver } from './mx.ts';
import type { ProvidersService } from './providers.ts';
import { smtpSend, type SmtpOutcome, type SmtpTarget } from './smtp-client.ts';

/** What happened to one recipient in this attempt. */
export interface RecipientResult {
  row: OutboundRecipientRow;
  kind: 'delivered' | 'temporary' | 'permanent' | 'uncertain' | 'rejected';
  reply: string;
  code: number | null;
  route: 'local' | 'provider' | 'mx' | null;
  providerId: string | null;
  remoteMta: string | null;
}

/** Backoff before retry n (1-based): base * 2^(n-1), at most an hour. */
export function backoffMs(baseSeconds: number, attempt: number): number {
  return Math.min(3600_000, baseSeconds * 1000 * 2 ** Math.max(0, attempt - 1));
}

export interface DeliveryDeps {
  events: EventsService;
  ingest: IngestService;
  filters: FiltersService;
  providers: ProvidersService;
  /** Runs fn while holding a slot of `key` (per-domain or per-provider concurrency). */
  slot: <T>(key: string, fn: () => Promise<T>) => Promise<T>;
}

/** Outcomes recorded in one transaction at most. */
export const RECORD_BATCH_MAX = 64;

interface PendingRecord {
  submission: SubmissionMeta;
  results: RecipientResult[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class DeliveryService {
  private readonly ctx: ServiceContext;
  private readonly recordQueue: PendingRecord[] = [];
  private recording = false;
  private readonly deps: DeliveryDeps;
  private readonly recipients: RecipientsService;
  private readonly mx: MxResolver;

  constructor(ctx: ServiceContext, deps: DeliveryDeps) {
    this.ctx = ctx;
    this.deps = deps;
    this.recipients = new RecipientsService(ctx, deps.filters);
    this.mx = new MxResolver(ctx.config.dnsServers);
  }

  /** Processes claimed rows (all of one submission). */
  async attempt(submission: SubmissionMeta, rows: OutboundRecipientRow[]): Promise<void> {
    if (submission.undo_status === 'canceled') return;
    const raw = await this.ctx.store.submissions.raw(submission.id);
    if (!raw) {
      await this.record(submission, rows.map((row) => ({ row, kind: 'permanent', reply: 'message content is no longer stored', code: null, route: null, providerId: null, remoteMta: null })), raw);
      return;
    }
    // Nothing leaves from a mailbox that is not active: a suspended one's mail waits (retried with
    // backoff until it is resumed or the retry time ends), a deleted one's is dropped.
    const sender = await this.ctx.store.mailboxes.get(submission.mailbox_id);
    if (!sender || sender.status !== 'active') {
      const held = sender?.status === 'suspended';
      const reply = held ? '451 4.7.1 the sending mailbox is suspended; held until it is resumed' : '550 5.7.1 the sending mailbox was deleted';
      await this.record(submission, rows.map((row) => ({ row, kind: held ? 'temporary' : 'permanent', reply, code: held ? 451 : 550, route: null, providerId: null, remoteMta: null })), raw);
      return;
    }
    const message = await this.prepare(raw, submission);

    // Local recipients first: their rows finish inside the ingest transaction.
    const remote: OutboundRecipientRow[] = [];
    const results: RecipientResult[] = [];
    const local: { row: OutboundRecipientRow; mailboxId: string }[] = [];
    for (const row of rows) {
      const verdict = await this.recipients.check({ recipient: row.email, sender: submission.envelope_from, declaredSize: message.byteLength });
      if (verdict.ok) local.push({ row, mailboxId: verdict.mailboxId });
      else if (verdict.reason === 'relay_denied') remote.push(row);
      else if (verdict.reason === 'over_quota') results.push({ row, kind: 'temporary', reply: '452 4.2.2 mailbox full', code: 452, route: 'local', providerId: null, remoteMta: null });
      else results.push({ row, kind: 'permanent', reply: verdict.reason === 'unknown_recipient' ? '550 5.1.1 no such mailbox' : verdict.reason === 'sender_filtered' ? '550 5.7.1 sender refused by the recipient\'s filter' : '550 5.2.1 mailbox unavailable', code: 550, route: 'local', providerId: null, remoteMta: null });
    }
    if (local.length > 0) results.push(...(await this.deliverLocal(submission, message, local)));

    if (remote.length > 0) results.push(...(await this.deliverRemote(submission, message, remote)));
    const pending = results.filter((r) => !(r.kind === 'delivered' && r.route === 'local'));
    if (pending.length > 0) await this.record(submission, pending, raw);
  }

  /** Bcc removed and DKIM-signed with the From (else envelope) domain's key when Mailmux holds it. */
  private async prepare(raw: Buffer, submission: SubmissionMeta): Promise<Buffer> {
    const stripped = stripBcc(raw);
    const fromDomain = /^from:[^\n]*@([a-z0-9.-]+)/im.exec(stripped.toString('latin1').split(/\r?\n\r?\n/)[0] ?? '')?.[1]?.toLowerCase();
    const domainName = fromDomain ?? splitAddress(submission.envelope_from)?.domain;
    const domain: DomainRow | undefined = domainName ? await this.ctx.store.domains.byName(domainName) : undefined;
    if (!domain || (domain.team_id !== submission.team_id && domain.is_default !== 1)) return stripped;
    try {
      return (await signMessage(stripped, domain)).message;
    } catch (err) {
      this.ctx.log.warn({ event: 'outbound.dkim_failed', submission_id: submission.id, err: (err as Error).message });
      return stripped;
    }
  }

  private async deliverLocal(submission: SubmissionMeta, message: Buffer, local: { row: OutboundRecipientRow; mailboxId: string }[]): Promise<RecipientResult[]> {
    const results: RecipientResult[] = [];
    const byMailbox = new Map<string, OutboundRecipientRow[]>();
    for (const l of local) byMailbox.set(l.mailboxId, [...(byMailbox.get(l.mailboxId) ?? []), l.row]);
    try {
      const r = await this.deps.ingest.deliver({
        raw: message,
        targets: [...byMailbox.entries()].map(([mailboxId, rs]) => ({ mailboxId, recipients: rs.map((x) => x.email) })),
        enforceQuota: true,
        announce: { sender: submission.envelope_from },
        inTransaction: async (tx, delivered) => {
          const done: RecipientResult[] = [];
          for (const d of delivered) for (const row of byMailbox.get(d.mailboxId) ?? []) done.push({ row, kind: 'delivered', reply: '250 2.0.0 delivered locally', code: 250, route: 'local', providerId: null, remoteMta: null });
          if (done.length > 0) await this.recordIn(tx, submission, done);
          results.length = 0;
          results.push(...done);
        },
      });
      for (const refused of r.refused) {
        for (const row of byMailbox.get(refused.mailboxId) ?? []) {
          results.push(refused.reason === 'over_quota'
            ? { row, kind: 'temporary', reply: '452 4.2.2 mailbox full', code: 452, route: 'local', providerId: null, remoteMta: null }
            : { row, kind: 'permanent', reply: '550 5.2.1 mailbox unavailable', code: 550, route: 'local', providerId: null, remoteMta: null });
        }
      }
    } catch (err) {
      // Lost the lease (another worker owns these rows now) or a storage error: try again later.
      this.ctx.log.warn({ event: 'outbound.local_failed', submission_id: submission.id, err: (err as Error).message });
      return [];
    }
    return results;
  }

  private async deliverRemote(submission: SubmissionMeta, message: Buffer, rows: OutboundRecipientRow[]): Promise<RecipientResult[]> {
    const mailbox = await this.ctx.store.mailboxes.get(submission.mailbox_id);
    const scope = mailbox ? (JSON.parse(mailbox.send_scope) as { type: string; provider_public_ids?: string[] }) : { type: 'all' };
    const route = await this.deps.providers.routeFor(submission.team_id, scope);
    if (route === 'direct') {
      const byDomain = new Map<string, OutboundRecipientRow[]>();
      for (const row of rows) byDomain.set(row.domain, [...(byDomain.get(row.domain) ?? []), row]);
      const parts = await Promise.all([...byDomain.entries()].map(([domain, rs]) => this.deps.slot(`domain:${domain}`, () => this.deliverMx(submission, message, domain, rs))));
      return parts.flat();
    }
    if (route.length === 0) {
      return rows.map((row) => ({ row, kind: 'rejected', reply: 'no active sending account in the mailbox\'s send scope', code: null, route: null, providerId: null, remoteMta: null }));
    }
    const open = route.filter((p) => this.deps.providers.withinQuota(p));
    if (open.length === 0) {
      return rows.map((row) => ({ row, kind: 'temporary', reply: 'every sending account in the send scope is at its quota; retrying later', code: null, route: 'provider', providerId: null, remoteMta: null }));
    }
    return this.deliverProviders(submission, message, rows, open);
  }

  private async deliverMx(submission: SubmissionMeta, message: Buffer, domain: string, rows: OutboundRecipientRow[]): Promise<RecipientResult[]> {
    const answer = await this.mx.lookup(domain);
    if (!answer.ok) return rows.map((row) => ({ row, kind: answer.temporary ? 'temporary' : 'permanent', reply: answer.reason, code: null, route: 'mx', providerId: null, remoteMta: null }));
    let last: { outcome: SmtpOutcome; host: string } | null = null;
    for (const host of answer.hosts) {
      const target: SmtpTarget = { host: host.address, port: this.ctx.config.outbound.mxPort, security: 'opportunistic', verifyCertificate: false, auth: null, heloName: this.ctx.config.hostname, timeoutMs: this.ctx.config.outbound.timeoutSeconds * 1000 };
      const outcome = await smtpSend(target, { from: submission.envelope_from, to: rows.map((r) => r.email) }, message);
      last = { outcome, host: host.name };
      // Only a failure to talk to this host at all moves on to the next MX.
      if (!(outcome.kind === 'failed' && outcome.code === null)) break;
    }
    return this.resultsOf(rows, last!.outcome, 'mx', null, last!.host);
  }

  private async deliverProviders(submission: SubmissionMeta, message: Buffer, rows: OutboundRecipientRow[], providers: ProviderRow[]): Promise<RecipientResult[]> {
    let last: { outcome: SmtpOutcome; provider: ProviderRow } | null = null;
    for (const provider of providers) {
      const target = await this.deps.providers.target(provider);
      this.deps.providers.countUse(provider);
      const outcome = await this.deps.slot(`provider:${provider.id}`, () => smtpSend(target, { from: submission.envelope_from, to: rows.map((r) => r.email) }, message));
      last = { outcome, provider };
      if (outcome.kind === 'failed' && outcome.stage === 'handshake' && outcome.code !== null && [530, 534, 535, 538].includes(outcome.code)) {
        await this.deps.providers.markError(provider.id, `authentication failed: ${outcome.reply}`);
        // The account's fault, not the recipient's: the message waits for a working account.
        last = { outcome: { ...outcome, temporary: true }, provider };
        continue;
      }
      // Fail over on connection errors and temporary replies; never after an uncertain acceptance.
      if (outcome.kind === 'failed' && outcome.temporary) continue;
      break;
    }
    if (last!.outcome.kind !== 'failed') await this.deps.providers.markUsed(last!.provider.id);
    return this.resultsOf(rows, last!.outcome, 'provider', last!.provider.id, last!.provider.smtp_host);
  }

  private resultsOf(rows: OutboundRecipientRow[], outcome: SmtpOutcome, route: 'mx' | 'provider', providerId: string | null, remoteMta: string): RecipientResult[] {
    const base = { route, providerId, remoteMta };
    if (outcome.kind === 'uncertain') return rows.map((row) => ({ row, kind: 'uncertain', reply: outcome.reply, code: null, ...base }));
    const refusedBy = new Map(outcome.refused.map((r) => [r.email, r]));
    return rows.map((row): RecipientResult => {
      const refused = refusedBy.get(row.email);
      if (refused) return { row, kind: refused.code >= 500 ? 'permanent' : 'temporary', reply: refused.reply, code: refused.code, ...base };
      if (outcome.kind === 'sent') return { row, kind: 'delivered', reply: outcome.reply, code: outcome.code, ...base };
      return { row, kind: outcome.temporary ? 'temporary' : 'permanent', reply: outcome.reply, code: outcome.code, ...base };
    });
  }

  /** Commits outcomes; definite failures add a DSN to the sender's inbox in the same transaction. */
  private async record(submission: SubmissionMeta, results: RecipientResult[], raw: Buffer | null): Promise<void> {
    const now = this.ctx.clock.now();
    const expired = (r: RecipientResult): boolean => r.kind === 'temporary' && now - Date.parse(r.row.created_at) >= this.ctx.config.outbound.retryHours * 3600_000;
    const bounced = results.filter((r) => r.kind === 'permanent' || r.kind === 'rejected' || expired(r));
    const sender = await this.ctx.store.mailboxes.get(submission.mailbox_id);
    if (bounced.length > 0 && raw && sender && sender.status === 'active') {
      const dsnRecipients: DsnRecipient[] = bounced.map((r) => ({ email: r.row.email, diagnostic: r.reply, code: r.code, remoteMta: r.remoteMta }));
      const subject = /^subject:[ \t]*([^\r\n]*)/im.exec(raw.toString('utf8').split(/\r?\n\r?\n/)[0] ?? '')?.[1] ?? null;
      const messageId = /^message-id:[ \t]*<([^>\r\n]+)>/im.exec(raw.toString('latin1').split(/\r?\n\r?\n/)[0] ?? '')?.[1] ?? null;
      const dsn = buildDsn({
        reportingMta: this.ctx.config.hostname,
        postmaster: `mailer-daemon@${this.ctx.config.hostname}`,
        to: sender.email,
        original: raw,
        originalSubject: subject,
        originalMessageId: messageId,
        arrivalDate: new Date(submission.created_at),
        recipients: dsnRecipients,
        expired: bounced.some(expired),
        now: new Date(now),
      });
      let recorded = false;
      try {
        await this.deps.ingest.deliver({
          raw: dsn,
          targets: [{ mailboxId: sender.id }],
          inTransaction: async (tx) => {
            await this.recordIn(tx, submission, results);
            recorded = true;
          },
        });
      } catch (err) {
        if (!recorded) this.ctx.log.warn({ event: 'outbound.record_failed', submission_id: submission.id, err: (err as Error).message });
      }
      return;
    }
    try {
      await this.recordGrouped(submission, results);
    } catch (err) {
      this.ctx.log.warn({ event: 'outbound.record_failed', submission_id: submission.id, err: (err as Error).message });
    }
  }

  /**
   * Outcomes that finish together share one transaction (one durable commit on SQLite instead of
   * one per message). If the shared transaction fails (e.g. one attempt lost its lease), each is
   * recorded on its own so one bad outcome does not undo the others.
   */
  private recordGrouped(submission: SubmissionMeta, results: RecipientResult[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.recordQueue.push({ submission, results, resolve, reject });
      if (!this.recording) {
        this.recording = true;
        // Let the I/O callbacks already due (other finished attempts) join this batch.
        setImmediate(() => void this.flushRecords());
      }
    });
  }

  private async flushRecords(): Promise<void> {
    try {
      while (this.recordQueue.length > 0) {
        const batch = this.recordQueue.splice(0, RECORD_BATCH_MAX);
        try {
          await this.ctx.store.transaction(async (tx) => {
            for (const r of batch) await this.recordIn(tx, r.submission, r.results);
          });
          for (const r of batch) r.resolve();
        } catch {
          for (const r of batch) {
            try {
              await this.ctx.store.transaction((tx) => this.recordIn(tx, r.submission, r.results));
              r.resolve();
            } catch (err) {
              r.reject(err);
            }
          }
        }
      }
    } finally {
      this.recording = false;
    }
  }

  /** Finishes each row (guarded by its attempt), emits the events, updates the delivery log. */
  async recordIn(tx: Repos, submission: SubmissionMeta, results: RecipientResult[]): Promise<void> {
    const now = this.ctx.clock.now();
    const at = iso(now);
    const retryMs = this.ctx.config.outbound.retryHours * 3600_000;
    const byType = new Map<EventType, { recipients: string[]; extra: Record<string, unknown> }>();
    const add = (type: EventType, email: string, extra: Record<string, unknown> = {}): void => {
      const e = byType.get(type) ?? { recipients: [], extra };
      e.recipients.push(email);
      byType.set(type, e);
    };
    let finished = 0;
    for (const r of results) {
      let outcome: OutboundOutcome;
      const common = { smtp_reply: r.reply.slice(0, 1000), route: r.route, provider_id: r.providerId, lease_owner: null };
      if (r.kind === 'delivered') {
        outcome = { ...common, status: 'delivered', final_at: at };
        add('message.delivered', r.row.email);
      } else if (r.kind === 'temporary' && now - Date.parse(r.row.created_at) < retryMs) {
        const next = now + backoffMs(this.ctx.config.outbound.retryBaseSeconds, r.row.attempts);
        outcome = { ...common, status: 'deferred', next_attempt_at: iso(Math.min(next, Date.parse(r.row.created_at) + retryMs)), first_deferred_at: r.row.first_deferred_at ?? at };
        if (r.row.first_deferred_at === null) add('message.delivery_delayed', r.row.email, { delay_type: 'General', delay_expires_at: iso(Date.parse(r.row.created_at) + retryMs) });
      } else if (r.kind === 'rejected') {
        outcome = { ...common, status: 'failed', final_at: at };
        add('message.rejected', r.row.email, { reject_reason: r.reply });
      } else {
        outcome = { ...common, status: 'failed', final_at: at, smtp_reply: (r.kind === 'temporary' ? `gave up after ${this.ctx.config.outbound.retryHours} h: ${r.reply}` : r.reply).slice(0, 1000) };
        add('message.bounced', r.row.email, {
          bounce_type: r.kind === 'uncertain' ? 'Undetermined' : r.kind === 'temporary' ? 'Transient' : 'Permanent',
          bounce_subtype: r.kind === 'uncertain' ? 'UncertainAcceptance' : r.kind === 'temporary' ? 'Expired' : 'General',
        });
      }
      if (await tx.outbound.finish(r.row.seq, r.row.attempts, outcome, at)) finished++;
      else throw new Error('lease lost');
    }
    if (finished === 0) return;
    const log = await tx.deliveryLogs.get(submission.log_id);
    const messageId = log?.message_id ?? null;
    for (const [type, e] of byType) {
      await this.deps.events.emit(tx, {
        type,
        teamId: submission.team_id,
        mailboxId: submission.mailbox_id,
        data: { sendmux_message_id: submission.email_id, message_id: messageId, message_id_kind: messageId ? 'rfc5322' : null, recipients: e.recipients, sender: log?.from_email ?? submission.envelope_from, ...e.extra },
      });
    }
    await this.refreshLog(tx, submission, results);
    await tx.changes.append({ teamId: submission.team_id, mailboxId: submission.mailbox_id, type: 'submission', objectId: submission.id, kind: 'updated' });
  }

  private async refreshLog(tx: Repos, submission: SubmissionMeta, results: RecipientResult[]): Promise<void> {
    const rows = await tx.outbound.forSubmission(submission.id);
    const delivered = rows.filter((r) => r.status === 'delivered');
    const failed = rows.filter((r) => r.status === 'failed');
    const open = rows.some((r) => r.status === 'queued' || r.status === 'deferred');
    const rejectedOnly = failed.length > 0 && delivered.length === 0 && failed.every((r) => r.route === null);
    const status = open ? 'pending' : delivered.length > 0 ? 'sent' : rejectedOnly ? 'rejected' : 'failed';
    const lastProvider = [...results].reverse().find((r) => r.providerId)?.providerId ?? null;
    const provider = lastProvider ? await tx.providers.get(lastProvider) : undefined;
    const firstDelivered = delivered.map((r) => r.final_at).filter((x): x is string => x !== null).sort()[0] ?? null;
    const reason = status === 'sent' ? (failed.length > 0 ? `${failed.length} recipient(s) failed` : null) : (failed[0]?.smtp_reply ?? rows.find((r) => r.smtp_reply)?.smtp_reply ?? null);
    await tx.deliveryLogs.update(submission.log_id, {
      status,
      status_reason: reason,
      attempts: Math.max(0, ...rows.map((r) => r.attempts)),
      sent_at: firstDelivered,
      accepted_recipient_count: delivered.length,
      rejected_recipient_count: failed.length,
      ...(provider ? { provider_id: provider.id, provider_name: provider.name } : {}),
      updated_at: iso(this.ctx.clock.now()),
    });
    // The undo window is over once delivery starts (reads already show final after send_at).
    const finalPatch = submission.undo_status === 'pending' ? { undo_status: 'final' as const } : {};
    if (!open || submission.undo_status === 'pending') await tx.submissions.update(submission.id, { ...finalPatch, ...(open ? {} : { raw: null }), updated_at: iso(this.ctx.clock.now()) });
  }
}
