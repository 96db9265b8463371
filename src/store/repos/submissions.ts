// Submissions (JMAP EmailSubmission): one row per sent message, listed with the spec's filters and
// sorts (keyset pages on the sort column, id as the tie-breaker).
import type { Selectable } from 'kysely';
import type { PageKey } from '../../core/cursor.ts';
import type { SubmissionsTable } from '../schema.ts';
import type { RepoContext } from './common.ts';

export type SubmissionRow = Selectable<SubmissionsTable>;

export interface SubmissionQuery {
  identityIds?: string[];
  emailIds?: string[];
  threadIds?: string[];
  undoStatus?: 'pending' | 'final' | 'canceled';
  /** send_at >= after; send_at < before (ISO strings). */
  after?: string;
  before?: string;
  /** The current time: pending rows whose send_at has passed count as final. */
  now: string;
  sortBy: 'send_at' | 'email_id' | 'thread_id';
  direction: 'asc' | 'desc';
  limit: number;
  cursor: PageKey | null;
}

/** Every column but the raw message. */
const COLUMNS = ['id', 'team_id', 'mailbox_id', 'email_id', 'log_id', 'message_id', 'thread_id', 'identity_id', 'source', 'envelope_from', 'rcpt_to', 'undo_status', 'send_at', 'size_bytes', 'dsn_blob_ids', 'created_at', 'updated_at'] as const;
export type SubmissionMeta = Omit<SubmissionRow, 'raw'>;

export class SubmissionsRepo {
  private readonly ctx: RepoContext;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
  }

  async insert(row: SubmissionRow): Promise<void> {
    await this.ctx.db.insertInto('submissions').values(row).execute();
  }

  async get(id: string): Promise<SubmissionMeta | undefined> {
    return this.ctx.db.selectFrom('submissions').select(COLUMNS).where('id', '=', id).executeTakeFirst();
  }

  async getMany(ids: readonly string[]): Promise<SubmissionMeta[]> {
    if (ids.length === 0) return [];
    return this.ctx.db.selectFrom('submissions').select(COLUMNS).where('id', 'in', ids).execute();
  }

  async byEmailId(emailId: string): Promise<SubmissionMeta | undefined> {
    return this.ctx.db.selectFrom('submissions').select(COLUMNS).where('email_id', '=', emailId).executeTakeFirst();
  }

  async raw(id: string): Promise<Buffer | null> {
    const r = await this.ctx.db.selectFrom('submissions').select('raw').where('id', '=', id).executeTakeFirst();
    return r?.raw ? Buffer.from(r.raw) : null;
  }

  async update(id: string, patch: Partial<Omit<SubmissionRow, 'id' | 'team_id' | 'mailbox_id' | 'created_at'>>): Promise<void> {
    await this.ctx.db.updateTable('submissions').set(patch).where('id', '=', id).execute();
  }

  /** limit + 1 rows in the requested order. */
  async list(mailboxId: string, q: SubmissionQuery): Promise<SubmissionMeta[]> {
    let query = this.ctx.db.selectFrom('submissions').select(COLUMNS).where('mailbox_id', '=', mailboxId);
    if (q.identityIds) query = query.where('identity_id', 'in', q.identityIds.length ? q.identityIds : ['']);
    if (q.emailIds) query = query.where('message_id', 'in', q.emailIds.length ? q.emailIds : ['']);
    if (q.threadIds) query = query.where('thread_id', 'in', q.threadIds.length ? q.threadIds : ['']);
    if (q.undoStatus === 'pending') query = query.where('undo_status', '=', 'pending').where('send_at', '>', q.now);
    else if (q.undoStatus === 'final') query = query.where((eb) => eb.or([eb('undo_status', '=', 'final'), eb.and([eb('undo_status', '=', 'pending'), eb('send_at', '<=', q.now)])]));
    else if (q.undoStatus === 'canceled') query = query.where('undo_status', '=', 'canceled');
    if (q.after) query = query.where('send_at', '>=', q.after);
    if (q.before) query = query.where('send_at', '<', q.before);
    // email_id in the API is the Sent copy's message id (JMAP EmailSubmission.emailId).
    const col = q.sortBy === 'email_id' ? 'message_id' : q.sortBy;
    const cmp = q.direction === 'asc' ? '>' : '<';
    if (q.cursor) {
      const v = String(q.cursor.v);
      const id = q.cursor.id;
      query = query.where((eb) => eb.or([eb(col, cmp, v), eb.and([eb(col, '=', v), eb('id', cmp, id)])]));
    }
    return query.orderBy(col, q.direction).orderBy('id', q.direction).limit(q.limit + 1).execute();
  }
}
