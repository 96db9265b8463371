// The change log: every create/update/destroy appends a row in the same transaction as the data.
// It feeds /changes, query-changes, IMAP MODSEQ, SSE resume and the webhook outbox.
import { iso } from '../../core/clock.ts';
import type { RepoContext } from './common.ts';

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

  async append(entry: ChangeEntry): Promise<void> {
    await this.ctx.db
      .insertInto('changes')
      .values({
        team_id: entry.teamId ?? null,
        mailbox_id: entry.mailboxId ?? null,
        type: entry.type,
        object_id: entry.objectId,
        kind: entry.kind,
        created_at: iso(this.ctx.clock.now()),
      })
      .execute();
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
