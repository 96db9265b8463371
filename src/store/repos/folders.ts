// Folders (JMAP Mailboxes) of a mailbox: the six role folders made with it and custom ones.
// Each folder hands out IMAP UIDs from its own counter.
import type { FoldersTable } from '../schema.ts';
import type { RepoContext } from './common.ts';
import { ChangesRepo } from './changes.ts';
import { runCompiled } from './compiled.ts';

export type FolderRow = FoldersTable;

/**
 * The ids of role folders, by mailbox and role, as read once by this process: a role folder is made
 * with its mailbox, keeps its role and is never deleted while the mailbox lives (ids are not reused).
 */
const roleFolderIds = new Map<string, string>();
/** Entries kept at most (two a receiving mailbox: its inbox and spam folders); then it starts over. */
const ROLE_FOLDER_IDS_MAX = 100_000;

export class FoldersRepo {
  private readonly ctx: RepoContext;
  private readonly changes: ChangesRepo;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
    this.changes = new ChangesRepo(ctx);
  }

  async insert(row: Omit<FolderRow, 'total_messages' | 'unread_messages'>): Promise<void> {
    await this.ctx.db.insertInto('folders').values({ ...row, total_messages: 0, unread_messages: 0 }).execute();
    await this.changes.append({ mailboxId: row.mailbox_id, type: 'folder', objectId: row.id, kind: 'created' });
  }

  async get(id: string): Promise<FolderRow | undefined> {
    return this.ctx.db.selectFrom('folders').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async byRole(mailboxId: string, role: string): Promise<FolderRow | undefined> {
    const r = await runCompiled<FolderRow>(this.ctx.db, this.ctx.dialect, 'folders.by_role', (d) => d.selectFrom('folders').selectAll().where('mailbox_id', '=', mailboxId).where('role', '=', role), [mailboxId, role]);
    return r.rows[0];
  }

  async listForMailbox(mailboxId: string): Promise<FolderRow[]> {
    return this.ctx.db.selectFrom('folders').selectAll().where('mailbox_id', '=', mailboxId).orderBy('sort_order', 'asc').orderBy('id', 'asc').execute();
  }

  async byName(mailboxId: string, parentId: string | null, name: string): Promise<FolderRow | undefined> {
    let q = this.ctx.db.selectFrom('folders').selectAll().where('mailbox_id', '=', mailboxId).where('name', '=', name);
    q = parentId === null ? q.where('parent_id', 'is', null) : q.where('parent_id', '=', parentId);
    return q.executeTakeFirst();
  }

  async update(id: string, mailboxId: string, patch: Partial<Pick<FolderRow, 'name' | 'parent_id' | 'sort_order' | 'updated_at'>>): Promise<void> {
    await this.ctx.db.updateTable('folders').set(patch).where('id', '=', id).execute();
    await this.changes.append({ mailboxId, type: 'folder', objectId: id, kind: 'updated' });
  }

  /** Marks a folder changed (its counts moved) without touching its row. */
  async touched(id: string, mailboxId: string): Promise<void> {
    await this.changes.append({ mailboxId, type: 'folder', objectId: id, kind: 'updated' });
  }

  async delete(id: string, mailboxId: string): Promise<void> {
    await this.ctx.db.deleteFrom('folders').where('id', '=', id).execute();
    await this.changes.append({ mailboxId, type: 'folder', objectId: id, kind: 'destroyed' });
  }

  /**
   * A new message enters the mailbox's folder with this role: reserves its UID and counts it in
   * the folder's totals, in one statement (ingest: a delivery's folder row was read, given a UID
   * and counted by three). Undefined when the mailbox has no such folder. Call inside a transaction;
   * the caller tells MessagesRepo.insert the folder is counted.
   */
  async enterByRole(mailboxId: string, role: string, unread: 0 | 1): Promise<{ id: string; uid: number } | undefined> {
    const r = await runCompiled<{ id: string; next_uid: number | bigint }>(
      this.ctx.db,
      this.ctx.dialect,
      'folders.enter_by_role',
      (d) =>
        d
          .updateTable('folders')
          .set((eb) => ({ next_uid: eb('next_uid', '+', 1), total_messages: eb('total_messages', '+', 1), unread_messages: eb('unread_messages', '+', unread) }))
          .where('mailbox_id', '=', mailboxId)
          .where('role', '=', role)
          .returning(['id', 'next_uid']),
      [1, 1, unread, mailboxId, role],
    );
    const row = r.rows[0];
    return row && { id: row.id, uid: Number(row.next_uid) - 1 };
  }

  /**
   * Where a new message enters the mailbox's folder with this role (ingest). On PostgreSQL, in a
   * transaction: the folder's id only (read once per process), with no UID: the message's own
   * statement reserves its UID and counts it (MessagesRepo.insert), one round trip less a delivery
   * while the write-order lock is held. Elsewhere enterByRole: the UID reserved and the folder
   * counted now (`uid` set). Undefined when the mailbox has no such folder.
   */
  async entryByRole(mailboxId: string, role: string, unread: 0 | 1): Promise<{ id: string; uid: number | null } | undefined> {
    if (this.ctx.dialect !== 'postgres' || !this.ctx.inTransaction) return this.enterByRole(mailboxId, role, unread);
    const key = `${mailboxId} ${role}`;
    let id = roleFolderIds.get(key);
    if (id === undefined) {
      id = (await this.byRole(mailboxId, role))?.id;
      if (id === undefined) return undefined;
      if (roleFolderIds.size >= ROLE_FOLDER_IDS_MAX) roleFolderIds.clear();
      roleFolderIds.set(key, id);
    }
    return { id, uid: null };
  }

  /** Reserves `count` consecutive UIDs and returns the first. Call inside a transaction. */
  async allocateUids(id: string, count: number): Promise<number> {
    const r = await runCompiled<{ next_uid: number | bigint }>(
      this.ctx.db,
      this.ctx.dialect,
      'folders.allocate_uids',
      (d) => d.updateTable('folders').set((eb) => ({ next_uid: eb('next_uid', '+', count) })).where('id', '=', id).returning('next_uid'),
      [count, id],
    );
    const row = r.rows[0];
    if (!row) throw new Error('folder not found');
    return Number(row.next_uid) - count;
  }

  /** Total and unread messages per folder: counters kept by every message write (messages.ts). */
  async counts(folderIds: string[]): Promise<Map<string, { total: number; unread: number }>> {
    const out = new Map<string, { total: number; unread: number }>();
    if (folderIds.length === 0) return out;
    const rows = await this.ctx.db.selectFrom('folders').select(['id', 'total_messages', 'unread_messages']).where('id', 'in', folderIds).execute();
    for (const r of rows) out.set(r.id, { total: Number(r.total_messages), unread: Number(r.unread_messages) });
    return out;
  }

  async messageCount(id: string): Promise<number> {
    const r = await this.ctx.db.selectFrom('message_folders').select((eb) => eb.fn.countAll<number>().as('n')).where('folder_id', '=', id).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async childCount(id: string): Promise<number> {
    const r = await this.ctx.db.selectFrom('folders').select((eb) => eb.fn.countAll<number>().as('n')).where('parent_id', '=', id).executeTakeFirstOrThrow();
    return Number(r.n);
  }
}
