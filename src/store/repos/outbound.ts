// The outbound queue: one row per (submission, recipient). claim() leases due rows by pushing
// next_attempt_at past the lease and incrementing `attempts`, on PostgreSQL under FOR UPDATE SKIP
// LOCKED so concurrent processes never claim the same row (SQLite has one writer). Finishing an
// attempt is guarded by that attempt number, so a worker whose lease was taken over changes nothing.
import { sql, type Insertable, type Selectable } from 'kysely';
import type { OutboundRecipientsTable } from '../schema.ts';
import { DUE_STATUSES, type RepoContext } from './common.ts';

export type OutboundRecipientRow = Selectable<OutboundRecipientsTable>;
export type OutboundRecipientInsert = Insertable<OutboundRecipientsTable>;

export type OutboundOutcome = Partial<Pick<OutboundRecipientRow, 'status' | 'smtp_reply' | 'route' | 'provider_id' | 'next_attempt_at' | 'first_deferred_at' | 'final_at' | 'lease_owner'>>;

export class OutboundRepo {
  private readonly ctx: RepoContext;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
  }

  async enqueue(rows: OutboundRecipientInsert[]): Promise<void> {
    if (rows.length === 0) return;
    await this.ctx.db.insertInto('outbound_recipients').values(rows).execute();
  }

  /**
   * Leases up to `limit` due rows to `owner` until `leaseUntil`. Rows of submissions still in
   * their undo window are not due yet (their next_attempt_at is the window's end).
   */
  async claim(owner: string, nowIso: string, leaseUntilIso: string, limit: number): Promise<OutboundRecipientRow[]> {
    let due = this.ctx.db
      .selectFrom('outbound_recipients')
      .select('seq')
      .where('status', 'in', DUE_STATUSES)
      .where('next_attempt_at', '<=', nowIso)
      .orderBy('next_attempt_at')
      .orderBy('seq')
      .limit(limit);
    if (this.ctx.dialect === 'postgres') due = due.forUpdate().skipLocked();
    // SQLite: an UPDATE takes the write lock even when it changes nothing; it runs only when something is due.
    else if (!(await due.clearSelect().select(sql.lit(1).as('due')).limit(1).executeTakeFirst())) return [];
    return this.ctx.db
      .updateTable('outbound_recipients')
      .set((eb) => ({ attempts: eb('attempts', '+', 1), next_attempt_at: leaseUntilIso, lease_owner: owner }))
      .where('seq', 'in', due)
      .where('status', 'in', DUE_STATUSES)
      .returningAll()
      .execute();
  }

  /** Renews the lease of rows this owner is still working on (a heartbeat while an attempt runs). */
  async extend(owner: string, seqs: readonly number[], leaseUntilIso: string): Promise<void> {
    if (seqs.length === 0) return;
    await this.ctx.db
      .updateTable('outbound_recipients')
      .set({ next_attempt_at: leaseUntilIso })
      .where('seq', 'in', seqs)
      .where('lease_owner', '=', owner)
      .where('status', 'in', DUE_STATUSES)
      .execute();
  }

  /** Gives back every lease at once: on SQLite (one process) a lease left at start is a crashed run's. */
  async releaseLeases(nowIso: string): Promise<number> {
    const r = await this.ctx.db
      .updateTable('outbound_recipients')
      .set({ next_attempt_at: nowIso, lease_owner: null })
      .where('status', 'in', DUE_STATUSES)
      .where('lease_owner', 'is not', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  /** When the next queued row falls due (or its lease ends), or null when none waits. */
  async nextDueAt(): Promise<string | null> {
    const r = await this.ctx.db
      .selectFrom('outbound_recipients')
      .select((eb) => eb.fn.min('next_attempt_at').as('m'))
      .where('status', 'in', DUE_STATUSES)
      .executeTakeFirst();
    return (r?.m as string | null | undefined) ?? null;
  }

  /** Records the end of attempt `attempt`; false when the row was claimed again meanwhile or is final. */
  async finish(seq: number, attempt: number, outcome: OutboundOutcome, at: string): Promise<boolean> {
    const r = await this.ctx.db
      .updateTable('outbound_recipients')
      .set({ ...outcome, updated_at: at })
      .where('seq', '=', seq)
      .where('attempts', '=', attempt)
      .where('status', 'in', DUE_STATUSES)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async forSubmission(submissionId: string): Promise<OutboundRecipientRow[]> {
    return this.ctx.db.selectFrom('outbound_recipients').selectAll().where('submission_id', '=', submissionId).orderBy('seq').execute();
  }

  async forSubmissions(ids: readonly string[]): Promise<OutboundRecipientRow[]> {
    if (ids.length === 0) return [];
    return this.ctx.db.selectFrom('outbound_recipients').selectAll().where('submission_id', 'in', ids).orderBy('seq').execute();
  }

  /** Stops every not-yet-final row of a submission (cancel inside the undo window). */
  async cancel(submissionId: string, at: string): Promise<number> {
    const r = await this.ctx.db
      .updateTable('outbound_recipients')
      .set({ status: 'failed', smtp_reply: 'canceled', final_at: at, updated_at: at })
      .where('submission_id', '=', submissionId)
      .where('status', 'in', DUE_STATUSES)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  }
}
