// Threads of a mailbox: messages linked by References / In-Reply-To, or by normalised subject
// within a time window when the headers are missing.
import { sql, type SelectQueryBuilder } from 'kysely';
import type { Database, ThreadsTable } from '../schema.ts';
import type { RepoContext } from './common.ts';
import { ChangesRepo } from './changes.ts';
import { insertRows, runCompiled } from './compiled.ts';
import { MessageQuery, type MessageFilter } from './message-query.ts';

export type ThreadRow = ThreadsTable;
/** A thread as its writer gives it: the counters are the repo's. */
export type NewThread = Omit<ThreadRow, 'message_count' | 'unread_count' | 'attachment_count'>;
/** The message a new thread is made for, when it is counted with it. */
export interface ThreadFirst {
  unread: 0 | 1;
  attachments: 0 | 1;
}

/** The row ThreadsRepo.insert writes (MessagesRepo writes it too, with the message it is made for). */
export function threadRow(row: NewThread, first?: ThreadFirst): ThreadRow {
  const counts = first ? { message_count: 1, unread_count: first.unread, attachment_count: first.attachments } : { message_count: 0, unread_count: 0, attachment_count: 0 };
  return { ...row, ...counts };
}

export class ThreadsRepo {
  private readonly ctx: RepoContext;
  private readonly changes: ChangesRepo;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
    this.changes = new ChangesRepo(ctx);
  }

  /**
   * A new thread; its counters move with each message written (messages.ts). `first`: the message
   * it is made for, counted already (MessageInsert.counted.thread), else they start at zero.
   * Its 'created' change is the caller's to append: ingest appends a batch's thread changes in one
   * statement (changes.appendMany).
   */
  async insert(row: NewThread, first?: ThreadFirst): Promise<void> {
    await insertRows(this.ctx.db, this.ctx.dialect, 'threads', threadRow(row, first));
  }

  async get(id: string): Promise<ThreadRow | undefined> {
    return this.ctx.db.selectFrom('threads').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** The newest thread with this subject key whose last message is at or after `since`. */
  async bySubject(mailboxId: string, subjectKey: string, since: string): Promise<ThreadRow | undefined> {
    const r = await runCompiled<ThreadRow>(
      this.ctx.db,
      this.ctx.dialect,
      'threads.by_subject',
      (d) => d.selectFrom('threads').selectAll().where('mailbox_id', '=', mailboxId).where('subject_key', '=', subjectKey).where('last_received_at', '>=', since).orderBy('last_received_at', 'desc').limit(1),
      [mailboxId, subjectKey, since, 1],
    );
    return r.rows[0];
  }

  /** A message joined the thread: its last time moves on. Its 'updated' change is the caller's to append, as for insert. */
  async touch(id: string, lastReceivedAt: string): Promise<void> {
    await runCompiled(
      this.ctx.db,
      this.ctx.dialect,
      'threads.touch',
      (d) => d.updateTable('threads').set({ last_received_at: lastReceivedAt }).where('id', '=', id).where('last_received_at', '<', lastReceivedAt),
      [lastReceivedAt, id, lastReceivedAt],
    );
  }

  /** After a message left the thread: recompute its last time, or destroy it when empty. */
  async refresh(id: string, mailboxId: string): Promise<void> {
    const r = await this.ctx.db.selectFrom('messages').select((eb) => eb.fn.max('received_at').as('last')).where('thread_id', '=', id).executeTakeFirst();
    if (!r?.last) {
      await this.ctx.db.deleteFrom('threads').where('id', '=', id).execute();
      await this.changes.append({ mailboxId, type: 'thread', objectId: id, kind: 'destroyed' });
      return;
    }
    await this.ctx.db.updateTable('threads').set({ last_received_at: String(r.last) }).where('id', '=', id).execute();
    await this.changes.append({ mailboxId, type: 'thread', objectId: id, kind: 'updated' });
  }

  /** Threads with at least one message matching the filter, by most recent message. */
  async list(f: MessageFilter, direction: 'asc' | 'desc', limit: number, after: { v: string | number; id: string } | null): Promise<ThreadRow[]> {
    const mq = new MessageQuery(this.ctx);
    const { mailboxId, ...rest } = f;
    const filtered = Object.values(rest).some((v) => v !== undefined);
    let q = this.ctx.db.selectFrom('threads').selectAll('threads').where('threads.mailbox_id', '=', mailboxId);
    if (filtered) {
      q = q.where((eb) => {
        const sub = mq.apply(eb.selectFrom('messages').select(sql<number>`1`.as('one')).whereRef('messages.thread_id', '=', 'threads.id') as unknown as SelectQueryBuilder<Database, 'messages', object>, f);
        return eb.exists(sub as never);
      });
    }
    if (after) {
      const cmp = direction === 'desc' ? '<' : '>';
      q = q.where((eb) => eb.or([eb('threads.last_received_at', cmp, String(after.v)), eb.and([eb('threads.last_received_at', '=', String(after.v)), eb('threads.id', cmp, after.id)])]));
    }
    return q.orderBy('threads.last_received_at', direction).orderBy('threads.id', direction).limit(limit + 1).execute();
  }
}
