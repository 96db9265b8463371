// Incoming mail logs (spec tag Inboxes, IncomingLogItem): one row per mailbox an inbound message
// was delivered to, and one per refused recipient with the reason. Accepted rows belong to the
// mailbox's team and are what GET /inboxes/logs lists ("billing accountability"). Refused rows are
// kept for the operator with status 'rejected', the reason, and no team: nothing is billed for
// mail that was turned away (API-MAP §16), and the team-scoped list therefore never shows them.
import { iso } from '../../core/clock.ts';
import { decodeCursor, pageOf, type Page } from '../../core/cursor.ts';
import { invalidParameter, notFound } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { IncomingLogRow } from '../../store/index.ts';
import type { ServiceContext } from '../context.ts';

export type IncomingEventType = 'message.received' | 'message.received.spam';

export interface IncomingLogView {
  id: string;
  mailbox_id: string | null;
  mailbox_email: string | null;
  event_type: IncomingEventType;
  message_id: string | null;
  message_id_kind: string | null;
  from_email: string | null;
  to_emails: string[];
  subject: string | null;
  size_bytes: number | null;
  received_at: string;
  is_spam: boolean;
  billing_bucket_start: string;
  unit_amount: string;
  amount: string;
}

export interface AcceptedDelivery {
  teamId: string;
  mailboxId: string;
  mailboxEmail: string;
  /** The envelope recipients that reached this mailbox (plus tags kept). */
  recipients: string[];
  fromEmail: string | null;
  subject: string | null;
  rfcMessageId: string | null;
  sizeBytes: number;
  isSpam: boolean;
  receivedAt: number;
}

export interface RefusedDelivery {
  mailboxId: string | null;
  mailboxEmail: string | null;
  recipient: string;
  /** Envelope sender ('' for the null sender is stored as null). */
  sender: string;
  reason: string;
  sizeBytes: number | null;
  subject?: string | null;
  rfcMessageId?: string | null;
  receivedAt: number;
}

export interface IncomingLogListQuery {
  limit: number;
  cursor?: string;
  mailboxId?: string;
  eventType?: IncomingEventType;
  fromDate?: string;
  toDate?: string;
  search?: string;
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * A from_date / to_date query value as the bound the store compares with. Date-only values mean
 * whole UTC days (from = 00:00, to = the end of that day); a full timestamp is taken as is, and an
 * upper bound includes it.
 */
export function dateBound(value: string, edge: 'from' | 'to', param: string): string {
  const trimmed = value.trim();
  const ms = DATE_ONLY.test(trimmed) ? Date.parse(`${trimmed}T00:00:00.000Z`) : /^\d{4}-\d{2}-\d{2}T/i.test(trimmed) ? Date.parse(trimmed) : Number.NaN;
  if (!Number.isFinite(ms)) throw invalidParameter(`${param} must be an ISO 8601 date (YYYY-MM-DD) or date-time`, param);
  if (edge === 'from') return iso(ms);
  // The store's upper bound is exclusive.
  return iso(DATE_ONLY.test(trimmed) ? ms + DAY_MS : ms + 1);
}

export function incomingLogView(row: IncomingLogRow): IncomingLogView {
  const receivedMs = Date.parse(row.received_at);
  return {
    id: row.id,
    mailbox_id: row.mailbox_id,
    mailbox_email: row.mailbox_email,
    event_type: row.event_type === 'message.received.spam' ? 'message.received.spam' : 'message.received',
    message_id: row.rfc_message_id,
    message_id_kind: row.rfc_message_id ? 'rfc5322' : null,
    from_email: row.from_email,
    to_emails: JSON.parse(row.to_emails) as string[],
    subject: row.subject,
    size_bytes: row.size_bytes === null ? null : Number(row.size_bytes),
    received_at: row.received_at,
    is_spam: row.is_spam === 1,
    billing_bucket_start: iso(receivedMs - (receivedMs % HOUR_MS)),
    // Self-hosted mail is not billed: the spec's amounts are honest zeroes.
    unit_amount: '0',
    amount: '0',
  };
}

/** The rows for accepted deliveries: written by ingest in the same transaction as the messages. */
export function acceptedRows(deliveries: AcceptedDelivery[]): IncomingLogRow[] {
  return deliveries.map((d) => ({
    id: newId('ilog'),
    team_id: d.teamId,
    mailbox_id: d.mailboxId,
    mailbox_email: d.mailboxEmail,
    event_type: d.isSpam ? 'message.received.spam' : 'message.received',
    is_spam: d.isSpam ? 1 : 0,
    status: 'accepted',
    reason: null,
    from_email: d.fromEmail,
    to_emails: JSON.stringify(d.recipients),
    subject: d.subject,
    rfc_message_id: d.rfcMessageId,
    size_bytes: d.sizeBytes,
    received_at: iso(d.receivedAt),
  }));
}

export class IncomingLogsService {
  private readonly ctx: ServiceContext;
  constructor(ctx: ServiceContext) {
    this.ctx = ctx;
  }

  /** One row per refused recipient, with no team (see the module comment); returns the rows written. */
  async recordRefused(refusals: RefusedDelivery[]): Promise<IncomingLogRow[]> {
    const rows: IncomingLogRow[] = refusals.map((r) => ({
      id: newId('ilog'),
      team_id: null,
      mailbox_id: r.mailboxId,
      mailbox_email: r.mailboxEmail,
      event_type: 'message.received',
      is_spam: 0,
      status: 'rejected',
      reason: r.reason,
      from_email: r.sender === '' ? null : r.sender,
      to_emails: JSON.stringify([r.recipient]),
      subject: r.subject ?? null,
      rfc_message_id: r.rfcMessageId ?? null,
      size_bytes: r.sizeBytes,
      received_at: iso(r.receivedAt),
    }));
    await this.ctx.store.incomingLogs.insert(rows);
    return rows;
  }

  async list(teamId: string, q: IncomingLogListQuery): Promise<Page<IncomingLogView>> {
    const rows = await this.ctx.store.incomingLogs.list({
      teamId,
      limit: q.limit,
      after: decodeCursor(q.cursor),
      ...(q.mailboxId ? { mailboxId: q.mailboxId } : {}),
      ...(q.eventType ? { eventType: q.eventType } : {}),
      ...(q.fromDate ? { fromDate: dateBound(q.fromDate, 'from', 'from_date') } : {}),
      ...(q.toDate ? { toDate: dateBound(q.toDate, 'to', 'to_date') } : {}),
      ...(q.search && q.search.trim() !== '' ? { search: q.search.trim() } : {}),
    });
    const page = pageOf(rows, q.limit, (r) => ({ v: r.received_at, id: r.id }));
    return { ...page, items: page.items.map(incomingLogView) };
  }

  async get(teamId: string, id: string): Promise<IncomingLogView> {
    const row = await this.ctx.store.incomingLogs.get(id);
    if (!row || row.team_id !== teamId) throw notFound('Incoming log');
    return incomingLogView(row);
  }
}
