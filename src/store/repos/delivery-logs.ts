// Delivery logs: one row per sent message (dlog_), updated as its recipients reach final outcomes;
// the per-recipient outcomes are the outbound queue rows of the same submission.
import { sql } from 'kysely';
import type { DeliveryLogsTable } from '../schema.ts';
import type { ListQuery, RepoContext } from './common.ts';

export type DeliveryLogRow = DeliveryLogsTable;

export interface DeliveryLogQuery extends ListQuery {
  status?: DeliveryLogRow['status'];
  /** created_at >= from, < to (ISO). */
  from?: string;
  to?: string;
  providerId?: string;
  /** Lower-cased substring of recipient, sender, subject or Message-ID. */
  search?: string;
}

export interface MetricsBucket {
  bucket: string;
  status: DeliveryLogRow['status'];
  n: number;
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export class DeliveryLogsRepo {
  private readonly ctx: RepoContext;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
  }

  async insert(row: DeliveryLogRow): Promise<void> {
    await this.ctx.db.insertInto('delivery_logs').values(row).execute();
  }

  async get(id: string): Promise<DeliveryLogRow | undefined> {
    return this.ctx.db.selectFrom('delivery_logs').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async update(id: string, patch: Partial<Omit<DeliveryLogRow, 'id' | 'team_id' | 'created_at'>>): Promise<void> {
    await this.ctx.db.updateTable('delivery_logs').set(patch).where('id', '=', id).execute();
  }

  /** Newest first (created_at desc, id desc), limit + 1 rows. */
  async listForTeam(teamId: string, q: DeliveryLogQuery): Promise<DeliveryLogRow[]> {
    let query = this.ctx.db.selectFrom('delivery_logs').selectAll().where('team_id', '=', teamId).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(q.limit + 1);
    if (q.status) query = query.where('status', '=', q.status);
    if (q.from) query = query.where('created_at', '>=', q.from);
    if (q.to) query = query.where('created_at', '<', q.to);
    if (q.providerId) query = query.where('provider_id', '=', q.providerId);
    if (q.search) query = query.where(sql<boolean>`search_text like ${`%${escapeLike(q.search.toLowerCase())}%`} escape '\\'`);
    if (q.after) {
      const after = q.after;
      query = query.where((eb) => eb.or([eb('created_at', '<', String(after.v)), eb.and([eb('created_at', '=', String(after.v)), eb('id', '<', after.id)])]));
    }
    return query.execute();
  }

  /** Logs since `from` per provider and status, with how many of them were created since `today`. */
  async providerCounts(teamId: string, from: string, today: string): Promise<{ provider_id: string; status: DeliveryLogRow['status']; n: number; today: number }[]> {
    const rows = await this.ctx.db
      .selectFrom('delivery_logs')
      .select(['provider_id', 'status', (eb) => eb.fn.countAll<number>().as('n'), sql<number>`sum(case when created_at >= ${today} then 1 else 0 end)`.as('today')])
      .where('team_id', '=', teamId)
      .where('created_at', '>=', from)
      .where('provider_id', 'is not', null)
      .groupBy(['provider_id', 'status'])
      .execute();
    return rows.map((r) => ({ provider_id: r.provider_id!, status: r.status, n: Number(r.n), today: Number(r.today) }));
  }

  /** Counts per status and time bucket (the first `prefixLength` characters of created_at). */
  async counts(teamId: string, from: string, to: string, prefixLength: number, providerId?: string): Promise<MetricsBucket[]> {
    const bucket = sql<string>`substr(created_at, 1, ${sql.lit(prefixLength)})`;
    let query = this.ctx.db
      .selectFrom('delivery_logs')
      .select([bucket.as('bucket'), 'status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('team_id', '=', teamId)
      .where('created_at', '>=', from)
      .where('created_at', '<', to)
      .groupBy([bucket, 'status']);
    if (providerId) query = query.where('provider_id', '=', providerId);
    const rows = await query.execute();
    return rows.map((r) => ({ bucket: r.bucket, status: r.status, n: Number(r.n) }));
  }
}
