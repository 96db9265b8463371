// Incoming mail logs: one row per accepted or rejected inbound delivery attempt, with the reason.
import { sql } from 'kysely';
import type { IncomingLogsTable } from '../schema.ts';
import type { RepoContext } from './common.ts';
import { insertRowsChunked } from './compiled.ts';

export type IncomingLogRow = IncomingLogsTable;

/** PostgreSQL types of the columns that are not text (migration 002), for insert's one-statement form. */
const INCOMING_LOG_PG_TYPES = { is_spam: 'integer', size_bytes: 'bigint' };

export interface IncomingLogQuery {
  teamId: string;
  limit: number;
  after: { v: string | number; id: string } | null;
  mailboxId?: string;
  eventType?: string;
  fromDate?: string;
  toDate?: string;
  search?: string;
}

export class IncomingLogsRepo {
  private readonly ctx: RepoContext;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
  }

  /** Ingest writes a batch's rows at once (insertRowsChunked; one statement on PostgreSQL). */
  async insert(rows: IncomingLogRow[]): Promise<void> {
    await insertRowsChunked(this.ctx.db, this.ctx.dialect, 'incoming_logs', rows, INCOMING_LOG_PG_TYPES);
  }

  async get(id: string): Promise<IncomingLogRow | undefined> {
    return this.ctx.db.selectFrom('incoming_logs').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async list(q: IncomingLogQuery): Promise<IncomingLogRow[]> {
    const like = this.ctx.dialect === 'postgres' ? 'ilike' : 'like';
    let query = this.ctx.db.selectFrom('incoming_logs').selectAll().where('team_id', '=', q.teamId).orderBy('received_at', 'desc').orderBy('id', 'desc').limit(q.limit + 1);
    if (q.mailboxId) query = query.where('mailbox_id', '=', q.mailboxId);
    if (q.eventType) query = query.where('event_type', '=', q.eventType);
    if (q.fromDate) query = query.where('received_at', '>=', q.fromDate);
    if (q.toDate) query = query.where('received_at', '<', q.toDate);
    if (q.search) {
      const pattern = `%${q.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      query = query.where((eb) =>
        eb.or(['mailbox_email', 'from_email', 'to_emails', 'subject', 'rfc_message_id'].map((col) => sql<boolean>`${sql.ref(col)} ${sql.raw(like)} ${pattern} ESCAPE '\\'`)),
      );
    }
    if (q.after) {
      const after = q.after;
      query = query.where((eb) => eb.or([eb('received_at', '<', String(after.v)), eb.and([eb('received_at', '=', String(after.v)), eb('id', '<', after.id)])]));
    }
    return query.execute();
  }
}
