// Webhook subscriptions, the delivery outbox and the delivery attempts (see migration 005).
// The outbox is a work queue: claim() leases due rows by pushing next_attempt_at past the lease,
// on PostgreSQL under FOR UPDATE SKIP LOCKED so concurrent processes never claim the same row;
// SQLite has one writer. A claim increments `attempts`, and finishing an attempt is guarded by
// that number, so a late finisher whose lease was taken over changes nothing.
import { sql, type Insertable, type Selectable } from 'kysely';
import type { WebhookAttemptsTable, WebhookDeliveriesTable, WebhooksTable } from '../schema.ts';
import { PENDING, type ListQuery, type RepoContext } from './common.ts';
import { runCompiled } from './compiled.ts';

export type WebhookRow = WebhooksTable;
export type WebhookDeliveryRow = Selectable<WebhookDeliveriesTable>;
export type WebhookDeliveryInsert = Insertable<WebhookDeliveriesTable>;
export type WebhookAttemptRow = WebhookAttemptsTable;
/** An attempt with whether its delivery (and so its payload) is still stored. */
export type WebhookAttemptListRow = WebhookAttemptRow & { has_payload: number };

export interface AttemptQuery extends ListQuery {
  eventType?: string;
  result?: string;
}

/** Rows deleted per purge statement: retention runs in bounded steps. */
const PURGE_BATCH = 5000;

export class WebhooksRepo {
  private readonly ctx: RepoContext;
  /**
   * Inside a transaction: deliverableForTeam's answer per team, until this transaction changes a
   * webhook. The fan-out asks for every event, and a batch of deliveries is one transaction.
   */
  private deliverable: Map<string, WebhookRow[]> | null = null;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
  }

  async insert(row: WebhookRow): Promise<void> {
    this.deliverable = null;
    await this.ctx.db.insertInto('webhooks').values(row).execute();
  }

  async get(id: string): Promise<WebhookRow | undefined> {
    return this.ctx.db.selectFrom('webhooks').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async getMany(ids: readonly string[]): Promise<WebhookRow[]> {
    if (ids.length === 0) return [];
    return this.ctx.db.selectFrom('webhooks').selectAll().where('id', 'in', ids).execute();
  }

  async countForTeam(teamId: string): Promise<number> {
    const r = await this.ctx.db.selectFrom('webhooks').select((eb) => eb.fn.countAll<number>().as('n')).where('team_id', '=', teamId).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** Newest first (created_at desc, id desc), limit + 1 rows. */
  async listForTeam(teamId: string, q: ListQuery): Promise<WebhookRow[]> {
    let query = this.ctx.db.selectFrom('webhooks').selectAll().where('team_id', '=', teamId).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(q.limit + 1);
    if (q.after) {
      const after = q.after;
      query = query.where((eb) => eb.or([eb('created_at', '<', String(after.v)), eb.and([eb('created_at', '=', String(after.v)), eb('id', '<', after.id)])]));
    }
    return query.execute();
  }

  /** The team's webhooks that take new events: enabled and not failing. */
  async deliverableForTeam(teamId: string): Promise<WebhookRow[]> {
    const kept = this.deliverable?.get(teamId);
    if (kept) return kept;
    // Read by the fan-out of every event: compiled once.
    const r = await runCompiled<WebhookRow>(this.ctx.db, this.ctx.dialect, 'webhooks.deliverable_for_team', (d) => d.selectFrom('webhooks').selectAll().where('team_id', '=', teamId).where('enabled', '=', 1).where('failing', '=', 0), [teamId, 1, 0]);
    if (this.ctx.inTransaction) (this.deliverable ??= new Map()).set(teamId, r.rows);
    return r.rows;
  }

  async update(id: string, patch: Partial<Omit<WebhookRow, 'id' | 'team_id' | 'created_at'>>): Promise<void> {
    this.deliverable = null;
    await this.ctx.db.updateTable('webhooks').set(patch).where('id', '=', id).execute();
  }

  /** Deletes the webhook with its outbox rows (in-flight retries are dropped) and attempts. */
  async delete(id: string): Promise<void> {
    this.deliverable = null;
    await this.ctx.db.deleteFrom('webhook_attempts').where('webhook_id', '=', id).execute();
    await this.ctx.db.deleteFrom('webhook_deliveries').where('webhook_id', '=', id).execute();
    await this.ctx.db.deleteFrom('webhooks').where('id', '=', id).execute();
  }

  // --- the outbox

  async enqueue(rows: WebhookDeliveryInsert[]): Promise<void> {
    if (rows.length === 0) return;
    await this.ctx.db
      .insertInto('webhook_deliveries')
      .values(rows)
      .onConflict((oc) => oc.columns(['webhook_id', 'event_id']).doNothing())
      .execute();
  }

  /**
   * Leases up to `limit` due deliveries: each gets attempts + 1 and next_attempt_at = leaseUntil,
   * so no one else claims it until the lease runs out (a crashed worker's row comes back then).
   */
  async claim(nowIso: string, leaseUntilIso: string, limit: number): Promise<WebhookDeliveryRow[]> {
    let due = this.ctx.db
      .selectFrom('webhook_deliveries')
      .select('seq')
      .where('state', '=', PENDING)
      .where('next_attempt_at', '<=', nowIso)
      .orderBy('next_attempt_at')
      .limit(limit);
    if (this.ctx.dialect === 'postgres') due = due.forUpdate().skipLocked();
    else if (!(await due.clearSelect().select(sql.lit(1).as('due')).limit(1).executeTakeFirst())) {
      // SQLite: an UPDATE takes the write lock even when it changes nothing (a look at an empty
      // outbox cost ten times a read); it runs only when something is due.
      return [];
    }
    return this.ctx.db
      .updateTable('webhook_deliveries')
      .set((eb) => ({ attempts: eb('attempts', '+', 1), next_attempt_at: leaseUntilIso }))
      .where('seq', 'in', due)
      .where('state', '=', PENDING)
      .returningAll()
      .execute();
  }

  /** When the next pending delivery falls due (or its lease ends), or null when none is pending. */
  async nextDueAt(): Promise<string | null> {
    const r = await this.ctx.db
      .selectFrom('webhook_deliveries')
      .select((eb) => eb.fn.min('next_attempt_at').as('m'))
      .where('state', '=', PENDING)
      .executeTakeFirst();
    return (r?.m as string | null | undefined) ?? null;
  }

  /**
   * Ends the attempt `attempt` of a claimed delivery: a new state, or pending again at `nextAt`.
   * False when the row is gone (webhook deleted) or was claimed again after our lease ran out.
   */
  async finish(seq: number, attempt: number, change: { state: WebhookDeliveryRow['state']; nextAt: string | null; at: string }): Promise<boolean> {
    const r = await this.ctx.db
      .updateTable('webhook_deliveries')
      .set({ state: change.state, last_attempt_at: change.at, ...(change.nextAt ? { next_attempt_at: change.nextAt } : {}) })
      .where('seq', '=', seq)
      .where('attempts', '=', attempt)
      .where('state', '=', PENDING)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async delivery(seq: number): Promise<WebhookDeliveryRow | undefined> {
    return this.ctx.db.selectFrom('webhook_deliveries').selectAll().where('seq', '=', seq).executeTakeFirst();
  }

  // --- attempts

  async insertAttempt(row: WebhookAttemptRow): Promise<void> {
    await this.ctx.db.insertInto('webhook_attempts').values(row).execute();
  }

  /** One webhook's attempts, newest first (created_at desc, id desc), limit + 1 rows. */
  async listAttempts(webhookId: string, q: AttemptQuery): Promise<WebhookAttemptListRow[]> {
    let query = this.ctx.db
      .selectFrom('webhook_attempts as a')
      .leftJoin('webhook_deliveries as d', 'd.seq', 'a.delivery_seq')
      .selectAll('a')
      .select((eb) => eb.case().when('d.seq', 'is not', null).then(1).else(0).end().as('has_payload'))
      .where('a.webhook_id', '=', webhookId)
      .orderBy('a.created_at', 'desc')
      .orderBy('a.id', 'desc')
      .limit(q.limit + 1);
    if (q.eventType) query = query.where('a.event_type', '=', q.eventType);
    if (q.result) query = query.where('a.result', '=', q.result as WebhookAttemptRow['result']);
    if (q.after) {
      const after = q.after;
      query = query.where((eb) => eb.or([eb('a.created_at', '<', String(after.v)), eb.and([eb('a.created_at', '=', String(after.v)), eb('a.id', '<', after.id)])]));
    }
    return query.execute();
  }

  async attempt(id: string): Promise<WebhookAttemptRow | undefined> {
    return this.ctx.db.selectFrom('webhook_attempts').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Drops attempts past their retention and finished deliveries whose last attempt is older than `beforeIso`. */
  async purge(nowIso: string, beforeIso: string): Promise<number> {
    const oldAttempts = this.ctx.db.selectFrom('webhook_attempts').select('id').where('expires_at', '<=', nowIso).limit(PURGE_BATCH);
    const a = await this.ctx.db.deleteFrom('webhook_attempts').where('id', 'in', oldAttempts).executeTakeFirst();
    const oldDeliveries = this.ctx.db
      .selectFrom('webhook_deliveries')
      .select('seq')
      .where('state', '<>', 'pending')
      .where((eb) => eb.or([eb('last_attempt_at', '<', beforeIso), eb.and([eb('last_attempt_at', 'is', null), eb('created_at', '<', beforeIso)])]))
      .limit(PURGE_BATCH);
    const d = await this.ctx.db.deleteFrom('webhook_deliveries').where('seq', 'in', oldDeliveries).executeTakeFirst();
    return Number(a.numDeletedRows) + Number(d.numDeletedRows);
  }
}
