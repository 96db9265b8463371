// The event log (see migration 003). Appends take the write-order lock, so `seq` commits in order
// and a tail by `seq` never skips a row.
import type { Selectable } from 'kysely';
import { iso } from '../../core/clock.ts';
import type { EventsTable } from '../schema.ts';
import { inWriteOrder, type RepoContext } from './common.ts';
import { insertReturningKey, insertRowsChunked } from './compiled.ts';

export type EventRow = Selectable<EventsTable>;
export type EventInsert = Omit<EventRow, 'seq' | 'created_at'>;

export class EventsRepo {
  private readonly ctx: RepoContext;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
  }

  async append(e: EventInsert): Promise<EventRow> {
    const values = { ...e, created_at: iso(this.ctx.clock.now()) };
    // Only the new seq comes back: the rest of the row is what was written (the JSON columns are
    // kilobytes a message; reading them back cost a copy of each).
    const seq = await inWriteOrder(this.ctx, (db) => insertReturningKey(db, this.ctx.dialect, 'events', values, 'seq'));
    return { seq, ...values };
  }

  /**
   * Several events, their seqs in this order. SQLite: one INSERT each (no round trips to save, and
   * a RETURNING would collect rows in a temporary table). PostgreSQL: one INSERT of them all
   * (insertRowsChunked; every column it writes is text), returning the seqs it took.
   */
  async appendMany(es: readonly EventInsert[]): Promise<EventRow[]> {
    if (this.ctx.dialect !== 'postgres' || es.length < 2) {
      const out: EventRow[] = [];
      for (const e of es) out.push(await this.append(e));
      return out;
    }
    const created_at = iso(this.ctx.clock.now());
    const rows = es.map((e) => ({ ...e, created_at }));
    const back = await inWriteOrder(this.ctx, (db) => insertRowsChunked<{ id: string; seq: number | string }>(db, this.ctx.dialect, 'events', rows, {}, ['id', 'seq']));
    const seqs = new Map(back.map((r) => [r.id, Number(r.seq)]));
    return rows.map((row) => {
      const seq = seqs.get(row.id);
      if (seq === undefined) throw new Error(`event ${row.id} got no seq`);
      return { seq, ...row };
    });
  }

  /** Events after `afterSeq`, oldest first: the tail every process follows. */
  async after(afterSeq: number, limit: number): Promise<EventRow[]> {
    return this.ctx.db.selectFrom('events').selectAll().where('seq', '>', afterSeq).orderBy('seq', 'asc').limit(limit).execute();
  }

  /** One mailbox's events after `afterSeq` (SSE replay), optionally of some types. */
  async forMailboxAfter(mailboxId: string, afterSeq: number, types: readonly string[] | null, limit: number): Promise<EventRow[]> {
    let q = this.ctx.db.selectFrom('events').selectAll().where('mailbox_id', '=', mailboxId).where('seq', '>', afterSeq);
    if (types) q = q.where('type', 'in', types);
    return q.orderBy('seq', 'asc').limit(limit).execute();
  }

  async get(id: string): Promise<EventRow | undefined> {
    return this.ctx.db.selectFrom('events').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async latestSeq(): Promise<number> {
    const r = await this.ctx.db.selectFrom('events').select((eb) => eb.fn.max('seq').as('m')).executeTakeFirst();
    return Number(r?.m ?? 0);
  }

  /** The oldest seq still kept for a mailbox (the replay window), or null when none are kept. */
  async oldestSeqForMailbox(mailboxId: string): Promise<number | null> {
    const r = await this.ctx.db.selectFrom('events').select((eb) => eb.fn.min('seq').as('m')).where('mailbox_id', '=', mailboxId).executeTakeFirst();
    return r?.m === null || r?.m === undefined ? null : Number(r.m);
  }

  /** Drops events created before `beforeIso` (retention); returns how many. */
  async purgeBefore(beforeIso: string, limit = 5000): Promise<number> {
    // In created_at order, so the created_at index finds the old rows: in seq order SQLite read the
    // whole table from its oldest row whenever no row was old yet (every maintenance tick, ~30 ms
    // for 10,000 events). Both orders are time order.
    const old = this.ctx.db.selectFrom('events').select('seq').where('created_at', '<', beforeIso).orderBy('created_at').limit(limit);
    const r = await this.ctx.db.deleteFrom('events').where('seq', 'in', old).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async purgeMailbox(mailboxId: string): Promise<void> {
    await this.ctx.db.deleteFrom('events').where('mailbox_id', '=', mailboxId).execute();
  }
}
