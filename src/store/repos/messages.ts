// Messages: the index rows of stored mail, their folder membership (with IMAP UIDs), keywords and
// full-text entries. Every write appends to the change log in the caller's transaction.
import { sql } from 'kysely';
import type { MessagesTable } from '../schema.ts';
import type { RepoContext } from './common.ts';
import { ChangesRepo } from './changes.ts';
import { foldForSearch } from './message-query.ts';

export type MessageRow = MessagesTable;

export interface MessageInsert {
  row: MessageRow;
  folderIds: string[];
  /** First UID per folder, allocated by the caller. */
  uids: Map<string, number>;
  search: { subject: string; addresses: string; body: string };
}

export interface FolderMembership {
  message_id: string;
  folder_id: string;
  uid: number;
}

export class MessagesRepo {
  private readonly ctx: RepoContext;
  private readonly changes: ChangesRepo;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
    this.changes = new ChangesRepo(ctx);
  }

  async insert(m: MessageInsert): Promise<void> {
    const db = this.ctx.db;
    const search = { subject: foldForSearch(m.search.subject), addresses: foldForSearch(m.search.addresses), body: foldForSearch(m.search.body) };
    // The change comes first so the row is written once, already carrying its modseq.
    const modseq = await this.changes.append({ mailboxId: m.row.mailbox_id, type: 'message', objectId: m.row.id, kind: 'created' });
    const row = { ...m.row, modseq };
    if (this.ctx.dialect === 'postgres') {
      const doc = `${search.subject}\n${search.addresses}\n${search.body}`;
      await db
        .insertInto('messages')
        .values({ ...row, search: sql`setweight(to_tsvector('simple', ${search.subject}), 'A') || to_tsvector('simple', ${doc})` } as unknown as MessageRow)
        .execute();
    } else {
      const r = await db.insertInto('messages').values(row).returning(sql<number>`rowid`.as('rowid')).executeTakeFirstOrThrow();
      await sql`INSERT INTO messages_fts(rowid, subject, addresses, body) VALUES (${r.rowid}, ${search.subject}, ${search.addresses}, ${search.body})`.execute(db);
    }
    for (const folderId of m.folderIds) {
      await db
        .insertInto('message_folders')
        .values({ message_id: row.id, folder_id: folderId, mailbox_id: row.mailbox_id, uid: m.uids.get(folderId) ?? 0, received_at: row.received_at, seen: row.seen })
        .execute();
    }
    const keywords = JSON.parse(row.keywords) as string[];
    if (keywords.length > 0) {
      await db.insertInto('message_keywords').values(keywords.map((keyword) => ({ message_id: row.id, mailbox_id: row.mailbox_id, keyword }))).execute();
    }
  }

  async get(id: string): Promise<MessageRow | undefined> {
    return this.ctx.db.selectFrom('messages').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async getMany(mailboxId: string, ids: string[]): Promise<MessageRow[]> {
    if (ids.length === 0) return [];
    return this.ctx.db.selectFrom('messages').selectAll().where('mailbox_id', '=', mailboxId).where('id', 'in', ids).execute();
  }

  async byRfcMessageIds(mailboxId: string, rfcIds: string[]): Promise<{ id: string; thread_id: string; rfc_message_id: string | null }[]> {
    if (rfcIds.length === 0) return [];
    return this.ctx.db
      .selectFrom('messages')
      .select(['id', 'thread_id', 'rfc_message_id'])
      .where('mailbox_id', '=', mailboxId)
      .where('rfc_message_id', 'in', rfcIds)
      .execute();
  }

  async folderIdsOf(messageIds: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (messageIds.length === 0) return out;
    const rows = await this.ctx.db.selectFrom('message_folders').select(['message_id', 'folder_id']).where('message_id', 'in', messageIds).execute();
    for (const r of rows) out.set(r.message_id, [...(out.get(r.message_id) ?? []), r.folder_id]);
    return out;
  }

  async memberships(messageId: string): Promise<FolderMembership[]> {
    return this.ctx.db.selectFrom('message_folders').select(['message_id', 'folder_id', 'uid']).where('message_id', '=', messageId).execute();
  }

  /** Replaces keywords and the flag columns; returns the new modseq. */
  async setKeywords(row: MessageRow, keywords: string[], updatedAt: string): Promise<number> {
    const db = this.ctx.db;
    const before = new Set(JSON.parse(row.keywords) as string[]);
    const after = new Set(keywords);
    const added = [...after].filter((k) => !before.has(k));
    const removed = [...before].filter((k) => !after.has(k));
    if (added.length > 0) await db.insertInto('message_keywords').values(added.map((keyword) => ({ message_id: row.id, mailbox_id: row.mailbox_id, keyword }))).execute();
    if (removed.length > 0) await db.deleteFrom('message_keywords').where('message_id', '=', row.id).where('keyword', 'in', removed).execute();
    const seen = after.has('$seen') ? 1 : 0;
    const changeId = await this.changes.append({ mailboxId: row.mailbox_id, type: 'message', objectId: row.id, kind: 'updated' });
    await db
      .updateTable('messages')
      .set({
        keywords: JSON.stringify([...after].sort()),
        seen,
        flagged: after.has('$flagged') ? 1 : 0,
        answered: after.has('$answered') ? 1 : 0,
        draft: after.has('$draft') ? 1 : 0,
        modseq: changeId,
        updated_at: updatedAt,
      })
      .where('id', '=', row.id)
      .execute();
    if (seen !== row.seen) await db.updateTable('message_folders').set({ seen }).where('message_id', '=', row.id).execute();
    return changeId;
  }

  /** Moves a message into exactly these folders (new UIDs where it enters a folder). */
  async setFolders(row: MessageRow, folderIds: string[], uids: Map<string, number>, updatedAt: string): Promise<void> {
    const db = this.ctx.db;
    const current = await this.memberships(row.id);
    const keep = new Set(folderIds);
    const have = new Set(current.map((c) => c.folder_id));
    const leaving = current.filter((c) => !keep.has(c.folder_id)).map((c) => c.folder_id);
    if (leaving.length > 0) await db.deleteFrom('message_folders').where('message_id', '=', row.id).where('folder_id', 'in', leaving).execute();
    for (const folderId of folderIds) {
      if (have.has(folderId)) continue;
      await db
        .insertInto('message_folders')
        .values({ message_id: row.id, folder_id: folderId, mailbox_id: row.mailbox_id, uid: uids.get(folderId) ?? 0, received_at: row.received_at, seen: row.seen })
        .execute();
    }
    const changeId = await this.changes.append({ mailboxId: row.mailbox_id, type: 'message', objectId: row.id, kind: 'updated' });
    await db.updateTable('messages').set({ modseq: changeId, updated_at: updatedAt }).where('id', '=', row.id).execute();
  }

  /** Destroys the index row and everything hanging off it; the caller decides about the blob. */
  async destroy(row: MessageRow): Promise<void> {
    const db = this.ctx.db;
    if (this.ctx.dialect === 'sqlite') {
      await sql`DELETE FROM messages_fts WHERE rowid = (SELECT rowid FROM messages WHERE id = ${row.id})`.execute(db);
    }
    await db.deleteFrom('message_folders').where('message_id', '=', row.id).execute();
    await db.deleteFrom('message_keywords').where('message_id', '=', row.id).execute();
    await db.deleteFrom('messages').where('id', '=', row.id).execute();
    await this.changes.append({ mailboxId: row.mailbox_id, type: 'message', objectId: row.id, kind: 'destroyed' });
  }

  async blobInUse(sha256: string): Promise<boolean> {
    const r = await this.ctx.db.selectFrom('messages').select('id').where('blob_sha256', '=', sha256).limit(1).executeTakeFirst();
    return r !== undefined;
  }

  async idsForMailbox(mailboxId: string, limit: number): Promise<MessageRow[]> {
    return this.ctx.db.selectFrom('messages').selectAll().where('mailbox_id', '=', mailboxId).limit(limit).execute();
  }

  /** Per thread: message count, unread count, whether any message has attachments (aggregated in SQL). */
  async threadStats(threadIds: string[]): Promise<Map<string, { count: number; unread: number; attachments: boolean }>> {
    const out = new Map<string, { count: number; unread: number; attachments: boolean }>();
    if (threadIds.length === 0) return out;
    const rows = await this.ctx.db
      .selectFrom('messages')
      .select((eb) => [
        'thread_id',
        eb.fn.countAll<number>().as('n'),
        eb.fn.sum<number>(eb.case().when('seen', '=', 0).then(1).else(0).end()).as('unread'),
        eb.fn.max('has_attachments').as('att'),
      ])
      .where('thread_id', 'in', threadIds)
      .groupBy('thread_id')
      .execute();
    for (const r of rows) out.set(r.thread_id, { count: Number(r.n), unread: Number(r.unread ?? 0), attachments: Number(r.att ?? 0) === 1 });
    return out;
  }

  /** The folders any message of each thread is in. */
  async threadFolders(threadIds: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (threadIds.length === 0) return out;
    const rows = await this.ctx.db
      .selectFrom('message_folders')
      .innerJoin('messages', 'messages.id', 'message_folders.message_id')
      .select(['messages.thread_id as thread_id', 'message_folders.folder_id as folder_id'])
      .distinct()
      .where('messages.thread_id', 'in', threadIds)
      .execute();
    for (const r of rows) out.set(r.thread_id, [...(out.get(r.thread_id) ?? []), r.folder_id]);
    return out;
  }

  /** The newest messages of a thread, newest first, at most `limit`. */
  async latestInThread(threadId: string, limit: number): Promise<MessageRow[]> {
    return this.ctx.db.selectFrom('messages').selectAll().where('thread_id', '=', threadId).orderBy('received_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
  }

  /** Ids and versions of a thread's messages in order (ids only, however long the thread). */
  async threadMessageIds(threadId: string): Promise<{ id: string; modseq: number }[]> {
    return this.ctx.db.selectFrom('messages').select(['id', 'modseq']).where('thread_id', '=', threadId).orderBy('received_at', 'asc').orderBy('id', 'asc').execute();
  }
}
