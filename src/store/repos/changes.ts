// The change log: every create/update/destroy appends a row in the same transaction as the data.
// It feeds /changes, query-changes, IMAP MODSEQ, SSE resume and the webhook outbox.
import { iso } from '../../core/clock.ts';
import { takeWriteOrderLock, type RepoContext } from './common.ts';

export type ChangeKind = 'created' | 'updated' | 'destroyed';

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
    await takeWriteOrderLock(this.ctx);
    const row = await this.ctx.db
      .insertInto('changes')
      .values({
        team_id: entry.teamId ?? null,
        mailbox_id: entry.mailboxId ?? null,
        type: entry.type,
        object_id: entry.objectId,
        kind: entry.kind,
        created_at: iso(this.ctx.clock.now()),
      })
      .returning('change_id')
      .executeTakeFirstOrThrow();
    return Number(row.change_id);
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

  async list(filter: { mailboxId?: string; teamId?: string; type?: string; afterId?: number; limit: number }) {
    let q = this.ctx.db.selectFrom('changes').selectAll().orderBy('change_id', 'asc').limit(filter.limit);
    if (filter.mailboxId !== undefined) q = q.where('mailbox_id', '=', filter.mailboxId);
    if (filter.teamId !== undefined) q = q.where('team_id', '=', filter.teamId);
    if (filter.type !== undefined) q = q.where('type', '=', filter.type);
    if (filter.afterId !== undefined) q = q.where('change_id', '>', filter.afterId);
    return q.execute();
  }
}
