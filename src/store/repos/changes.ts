// The change log: every create/update/destroy appends a row in the same transaction as the data.
// It feeds /changes, query-changes, IMAP MODSEQ, SSE resume and the webhook outbox.
import { sql } from 'kysely';
import { iso } from '../../core/clock.ts';
import { inWriteOrder, type RepoContext } from './common.ts';
import { insertReturningKey, insertRowsChunked } from './compiled.ts';

/** appendMany's columns are all text on PostgreSQL: no types to name for insertRowsChunked's one statement. */
const CHANGE_PG_TYPES = {};

export type ChangeKind = 'created' | 'updated' | 'destroyed';

/** Old rows one retention round reads (it deletes at most these): bounds a round's transaction. */
const PURGE_SCAN_ROWS = 20_000;

export interface ChangeEntry {
  teamId?: string | null;
  mailboxId?: string | null;
  type: string;
  objectId: string;
  kind: ChangeKind;
}

export class ChangesRepo {
  private readonly ctx: RepoContext;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
  }

  /** Appends one change and returns its id (monotonic across the whole log). */
  async append(entry: ChangeEntry): Promise<number> {
    const values = this.row(entry);
    return inWriteOrder(this.ctx, (db) => insertReturningKey(db, this.ctx.dialect, 'changes', values, 'change_id'));
  }

  /**
   * The row append() writes for `entry`, for a statement that appends it itself (PostgreSQL's
   * one-statement message insert, which must run where the write-order lock is held).
   */
  row(entry: ChangeEntry): { team_id: string | null; mailbox_id: string | null; type: string; object_id: string; kind: ChangeKind; created_at: string } {
    return {
      team_id: entry.teamId ?? null,
      mailbox_id: entry.mailboxId ?? null,
      type: entry.type,
      object_id: entry.objectId,
      kind: entry.kind,
      created_at: iso(this.ctx.clock.now()),
    };
  }

  /**
   * Appends several changes whose ids nobody needs (a batch's thread, folder and quota changes),
   * in multi-row INSERTs (insertRowsChunked; one on PostgreSQL).
   */
  async appendMany(entries: readonly ChangeEntry[]): Promise<void> {
    const now = iso(this.ctx.clock.now());
    const rows = entries.map((e) => ({ team_id: e.teamId ?? null, mailbox_id: e.mailboxId ?? null, type: e.type, object_id: e.objectId, kind: e.kind, created_at: now }));
    if (rows.length > 0) await inWriteOrder(this.ctx, (db) => insertRowsChunked(db, this.ctx.dialect, 'changes', rows, CHANGE_PG_TYPES));
  }

  /** The newest change id for (mailbox, type), or 0: the basis of a state token. */
  async latest(mailboxId: string, type: string): Promise<number> {
    const r = await this.ctx.db
      .selectFrom('changes')
      .select((eb) => eb.fn.max('change_id').as('m'))
      .where('mailbox_id', '=', mailboxId)
      .where('type', '=', type)
      .executeTakeFirst();
    return Number(r?.m ?? 0);
  }

  /** The oldest change id still kept for (mailbox, type), or null when none are. */
  async oldest(mailboxId: string, type: string): Promise<number | null> {
    const r = await this.ctx.db
      .selectFrom('changes')
      .select((eb) => eb.fn.min('change_id').as('m'))
      .where('mailbox_id', '=', mailboxId)
      .where('type', '=', type)
      .executeTakeFirst();
    return r?.m === null || r?.m === undefined ? null : Number(r.m);
  }

  /** Changes of (mailbox, type) after `afterId`, oldest first, at most `limit`. */
  async since(mailboxId: string, type: string, afterId: number, limit: number): Promise<{ change_id: number; object_id: string; kind: ChangeKind }[]> {
    const rows = await this.ctx.db
      .selectFrom('changes')
      .select(['change_id', 'object_id', 'kind'])
      .where('mailbox_id', '=', mailboxId)
      .where('type', '=', type)
      .where('change_id', '>', afterId)
      .orderBy('change_id', 'asc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ change_id: Number(r.change_id), object_id: r.object_id, kind: r.kind }));
  }

  /** The highest change id purged for (mailbox, type) (0 when none was): states below it are gone. */
  async horizon(mailboxId: string, type: string): Promise<number> {
    const r = await this.ctx.db.selectFrom('change_horizons').select('purged_through').where('mailbox_id', '=', mailboxId).where('type', '=', type).executeTakeFirst();
    return Number(r?.purged_through ?? 0);
  }

  /**
   * Retention: deletes mailbox changes created before `beforeIso`, for at most `maxGroups`
   * (mailbox, type) pairs, always keeping the newest row of each pair (so a state token never goes
   * backwards) and raising the pair's horizon to the highest id deleted. Returns the rows deleted.
   * Runs in the caller's transaction.
   */
  async purgeBefore(beforeIso: string, maxGroups = 200): Promise<number> {
    const db = this.ctx.db;
    // The oldest rows first, through the created_at index, at most PURGE_SCAN_ROWS of them; each
    // checked against the newest row of its (mailbox, type). Grouping straight over the table let
    // SQLite walk the (mailbox_id, type) index over every row instead, old or not: 70-200 ms a pass
    // on the 200,000 changes of the bench store with nothing to delete (now 0.1 ms), in a write
    // transaction, so receiving and every other write waited that long each hour.
    const old = db
      .selectFrom('changes as c')
      .select(['c.mailbox_id', 'c.type', 'c.change_id'])
      .where('c.created_at', '<', beforeIso)
      .where('c.mailbox_id', 'is not', null)
      .where((eb) =>
        eb(
          'c.change_id',
          '<',
          eb.selectFrom('changes as n').select((e2) => e2.fn.max('n.change_id').as('top')).whereRef('n.mailbox_id', '=', 'c.mailbox_id').whereRef('n.type', '=', 'c.type'),
        ),
      )
      .orderBy('c.created_at')
      .limit(PURGE_SCAN_ROWS);
    // Per pair, the highest such id: everything up to it is older (ids grow with time).
    const groups = await db
      .selectFrom(old.as('o'))
      .select((eb) => ['o.mailbox_id', 'o.type', eb.fn.max('o.change_id').as('m')])
      .groupBy(['o.mailbox_id', 'o.type'])
      .limit(maxGroups)
      .execute();
    let deleted = 0;
    for (const g of groups) {
      const mailboxId = g.mailbox_id as string;
      const upTo = Number(g.m);
      const r = await db.deleteFrom('changes').where('mailbox_id', '=', mailboxId).where('type', '=', g.type).where('change_id', '<=', upTo).executeTakeFirst();
      deleted += Number(r.numDeletedRows);
      await db
        .insertInto('change_horizons')
        .values({ mailbox_id: mailboxId, type: g.type, purged_through: upTo })
        // Never lower: another process may have purged further meanwhile.
        .onConflict((oc) =>
          oc.columns(['mailbox_id', 'type']).doUpdateSet({
            purged_through: sql<number>`CASE WHEN change_horizons.purged_through > excluded.purged_through THEN change_horizons.purged_through ELSE excluded.purged_through END`,
          }),
        )
        .execute();
    }
    return deleted;
  }

  async list(filter: { mailboxId?: string; teamId?: string; type?: string; afterId?: number; limit: number }) {
    let q = this.ctx.db.selectFrom('changes').selectAll().orderBy('change_id', 'asc').limit(filter.limit);
    if (filter.mailboxId !== undefined) q = q.where('mailbox_id', '=', filter.mailboxId);
    if (filter.teamId !== undefined) q = q.where('team_id', '=', filter.teamId);
    if (filter.type !== undefined) q = q.where('type', '=', filter.type);
    if (filter.afterId !== undefined) q = q.where('change_id', '>', filter.afterId);
    return q.execute();
  }
}
