// Read side of sending: submissions (Mailbox API), delivery logs and metrics (Management API), all
// from the submission, queue and delivery-log rows the send path and the worker write.
import { iso } from '../../core/clock.ts';
import { decodeCursor, pageOf, type Page } from '../../core/cursor.ts';
import { invalidParameter, notFound } from '../../core/errors.ts';
import type { DeliveryLogRow, OutboundRecipientRow, SubmissionMeta } from '../../store/index.ts';
import type { ServiceContext } from '../context.ts';
import { dateBound } from '../mail/incoming-logs.ts';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export interface SubmissionListInput {
  limit: number;
  cursor?: string;
  identityIds?: string[];
  emailIds?: string[];
  threadIds?: string[];
  undoStatus?: 'pending' | 'final' | 'canceled';
  after?: string;
  before?: string;
  sortBy?: 'send_at' | 'email_id' | 'thread_id';
  sortDirection?: 'asc' | 'desc';
}

function deliveredOf(r: OutboundRecipientRow): 'queued' | 'yes' | 'no' | 'unknown' {
  if (r.status === 'delivered') return 'yes';
  if (r.status === 'failed') return r.smtp_reply?.startsWith('no reply after the end of data') ? 'unknown' : 'no';
  return 'queued';
}

function timeParam(value: string, param: string): string {
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || !Number.isFinite(ms)) throw invalidParameter(`${param} must be an ISO 8601 date-time`, param);
  return iso(ms);
}

export class SendLogService {
  private readonly ctx: ServiceContext;
  constructor(ctx: ServiceContext) {
    this.ctx = ctx;
  }

  submissionView(s: SubmissionMeta, rows: OutboundRecipientRow[]): Record<string, unknown> {
    const now = iso(this.ctx.clock.now());
    const undo = s.undo_status === 'pending' && s.send_at <= now ? 'final' : s.undo_status;
    return {
      id: s.id,
      identity_id: s.identity_id,
      email_id: s.message_id,
      thread_id: s.thread_id,
      send_at: s.send_at,
      undo_status: undo,
      envelope: { mail_from: { email: s.envelope_from, parameters: null }, rcpt_to: (JSON.parse(s.rcpt_to) as string[]).map((email) => ({ email, parameters: null })) },
      delivery_status: rows.map((r) => ({ email: r.email, smtp_reply: r.smtp_reply, delivered: deliveredOf(r), displayed: 'unknown' })),
      dsn_blob_ids: JSON.parse(s.dsn_blob_ids) as string[],
      mdn_blob_ids: [],
    };
  }

  async listSubmissions(mailboxId: string, q: SubmissionListInput): Promise<Page<Record<string, unknown>>> {
    const sortBy = q.sortBy ?? 'send_at';
    const direction = q.sortDirection ?? 'desc';
    const rows = await this.ctx.store.submissions.list(mailboxId, {
      ...(q.identityIds ? { identityIds: q.identityIds } : {}),
      ...(q.emailIds ? { emailIds: q.emailIds } : {}),
      ...(q.threadIds ? { threadIds: q.threadIds } : {}),
      ...(q.undoStatus ? { undoStatus: q.undoStatus } : {}),
      ...(q.after ? { after: timeParam(q.after, 'after') } : {}),
      ...(q.before ? { before: timeParam(q.before, 'before') } : {}),
      now: iso(this.ctx.clock.now()),
      sortBy,
      direction,
      limit: q.limit,
      cursor: decodeCursor(q.cursor),
    });
    const col = (s: SubmissionMeta): string => (sortBy === 'send_at' ? s.send_at : sortBy === 'email_id' ? (s.message_id ?? '') : (s.thread_id ?? ''));
    const page = pageOf(rows, q.limit, (s) => ({ v: col(s), id: s.id }));
    const recipients = await this.ctx.store.outbound.forSubmissions(page.items.map((s) => s.id));
    return { ...page, items: page.items.map((s) => this.submissionView(s, recipients.filter((r) => r.submission_id === s.id))) };
  }

  async getSubmission(mailboxId: string, id: string): Promise<Record<string, unknown>> {
    const s = await this.ctx.store.submissions.get(id);
    if (!s || s.mailbox_id !== mailboxId) throw notFound('Submission');
    return this.submissionView(s, await this.ctx.store.outbound.forSubmission(id));
  }

  logView(row: DeliveryLogRow): Record<string, unknown> {
    return {
      id: row.id,
      provider_id: row.provider_id,
      provider_name: row.provider_name,
      message_id: row.message_id,
      from_email: row.from_email,
      sent_from_email: null,
      to_email: row.to_email,
      subject: row.subject,
      status: row.status,
      status_reason: row.status_reason,
      attempts: row.attempts,
      sent_at: row.sent_at,
      size_bytes: row.size_bytes,
      created_at: row.created_at,
      recipient_count: Math.min(50, row.recipient_count),
      accepted_recipient_count: Math.min(50, row.accepted_recipient_count),
      rejected_recipient_count: Math.min(50, row.rejected_recipient_count),
    };
  }

  async listLogs(teamId: string, q: { limit: number; cursor?: string; status?: DeliveryLogRow['status']; fromDate?: string; toDate?: string; providerId?: string; search?: string }): Promise<Page<Record<string, unknown>>> {
    const rows = await this.ctx.store.deliveryLogs.listForTeam(teamId, {
      limit: q.limit,
      after: decodeCursor(q.cursor),
      ...(q.status ? { status: q.status } : {}),
      ...(q.fromDate ? { from: dateBound(q.fromDate, 'from', 'from_date') } : {}),
      ...(q.toDate ? { to: dateBound(q.toDate, 'to', 'to_date') } : {}),
      ...(q.providerId ? { providerId: q.providerId } : {}),
      ...(q.search ? { search: q.search } : {}),
    });
    const page = pageOf(rows, q.limit, (r) => ({ v: r.created_at, id: r.id }));
    return { ...page, items: page.items.map((r) => this.logView(r)) };
  }

  async getLog(teamId: string, id: string): Promise<Record<string, unknown>> {
    const row = await this.ctx.store.deliveryLogs.get(id);
    if (!row || row.team_id !== teamId) throw notFound('Delivery log');
    const rows = await this.ctx.store.outbound.forSubmission(row.submission_id);
    const recipients = row.status === 'pending' ? null : rows.slice(0, 50).map((r) => ({
      email: r.email,
      type: (r.rcpt_type as 'to' | 'cc' | 'bcc' | null) ?? null,
      status: r.status === 'delivered' ? 'accepted' : 'rejected',
      reason: r.status === 'delivered' ? null : r.smtp_reply,
    }));
    return { ...this.logView(row), recipients };
  }

  /** EmailMetrics: the window's counts, the same-length window before it, and a timeseries. */
  async metrics(teamId: string, q: { window?: '24h' | '7d' | '30d'; fromDate?: string; toDate?: string; granularity?: 'hourly' | 'daily'; providerId?: string }): Promise<Record<string, unknown>> {
    const now = this.ctx.clock.now();
    const windowMs = q.window === '30d' ? 30 * DAY_MS : q.window === '7d' ? 7 * DAY_MS : DAY_MS;
    const to = q.toDate ? Date.parse(dateBound(q.toDate, 'to', 'to_date')) : now;
    const from = q.fromDate ? Date.parse(dateBound(q.fromDate, 'from', 'from_date')) : to - windowMs;
    if (from >= to) throw invalidParameter('from_date must be before to_date', 'from_date');
    const granularity = q.granularity ?? 'daily';
    const prefix = granularity === 'hourly' ? 13 : 10;
    const step = granularity === 'hourly' ? HOUR_MS : DAY_MS;
    if ((to - from) / step > 24 * 92) throw invalidParameter('The range has too many buckets for this granularity', 'granularity');
    const [current, previous] = await Promise.all([
      this.ctx.store.deliveryLogs.counts(teamId, iso(from), iso(to), prefix, q.providerId),
      this.ctx.store.deliveryLogs.counts(teamId, iso(from - (to - from)), iso(from), prefix, q.providerId),
    ]);
    const zero = (): Record<'total' | 'sent' | 'failed' | 'pending' | 'rejected', number> => ({ total: 0, sent: 0, failed: 0, pending: 0, rejected: 0 });
    const sum = (rows: typeof current): ReturnType<typeof zero> => {
      const out = zero();
      for (const r of rows) {
        out[r.status] += r.n;
        out.total += r.n;
      }
      return out;
    };
    const summary = sum(current);
    const before = sum(previous);
    const pct = (a: number, b: number): number => (b === 0 ? (a === 0 ? 0 : 100) : Math.round(((a - b) / b) * 10000) / 100);
    const buckets = new Map<string, ReturnType<typeof zero>>();
    const start = granularity === 'hourly' ? Math.floor(from / HOUR_MS) * HOUR_MS : Math.floor(from / DAY_MS) * DAY_MS;
    for (let t = start; t < to; t += step) buckets.set(iso(t).slice(0, prefix), zero());
    for (const r of current) {
      const b = buckets.get(r.bucket);
      if (!b) continue;
      b[r.status] += r.n;
      b.total += r.n;
    }
    const stamp = (key: string): string => (prefix === 13 ? `${key}:00:00Z` : `${key}T00:00:00Z`);
    return {
      summary,
      comparison: { ...before, change_pct: { total: pct(summary.total, before.total), sent: pct(summary.sent, before.sent), failed: pct(summary.failed, before.failed), rejected: pct(summary.rejected, before.rejected), pending: pct(summary.pending, before.pending) } },
      timeseries: [...buckets.entries()].map(([key, v]) => ({ timestamp: stamp(key), ...v })),
    };
  }
}
