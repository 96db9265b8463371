// Folders (JMAP Mailboxes): the six role folders every mailbox gets, and custom folders that can
// be created, renamed, nested and deleted while empty. Role folders cannot be renamed or deleted.
import { iso } from '../../core/clock.ts';
import { AppError, conflict, notFound } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import { decodeCursor, pageOf, type Page } from '../../core/cursor.ts';
import type { FolderRow, Repos } from '../../store/index.ts';
import type { ServiceContext } from '../context.ts';

export const FOLDER_ROLES = ['inbox', 'drafts', 'sent', 'archive', 'spam', 'trash'] as const;
export type FolderRole = (typeof FOLDER_ROLES)[number];
const ROLE_NAMES: Record<FolderRole, string> = { inbox: 'Inbox', drafts: 'Drafts', sent: 'Sent', archive: 'Archive', spam: 'Spam', trash: 'Trash' };
/** Custom folders sort after the role folders unless given an order. */
const CUSTOM_SORT_DEFAULT = 100;
/** Folder names: non-empty, at most 255 characters, no control characters, and no '/' (IMAP hierarchy separator). */
const NAME_MAX = 255;

export interface FolderView {
  id: string;
  name: string;
  parent_id: string | null;
  role: string | null;
  sort_order: number | null;
  total_messages: number;
  unread_messages: number;
  can_add_items: boolean;
}

function checkName(name: string, code: 'validation_error' | 'invalid_parameter', field = 'name'): string {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > NAME_MAX || /[\u0000-\u001f\u007f/]/.test(trimmed)) {
    throw new AppError(code, `Folder names are 1 to ${NAME_MAX} characters without control characters or '/'`, {
      param: field,
      errors: [{ field, code: 'invalid_string', message: 'Invalid folder name' }],
    });
  }
  return trimmed;
}

export class FoldersService {
  private readonly ctx: ServiceContext;
  constructor(ctx: ServiceContext) {
    this.ctx = ctx;
  }

  /** Creates the role folders of a new mailbox inside its creation transaction. */
  async createDefaults(tx: Repos, mailboxId: string): Promise<void> {
    const now = iso(this.ctx.clock.now());
    let order = 1;
    for (const role of FOLDER_ROLES) {
      await tx.folders.insert({
        id: newId('fld'),
        mailbox_id: mailboxId,
        name: ROLE_NAMES[role],
        role,
        parent_id: null,
        sort_order: order++,
        next_uid: 1,
        uid_validity: Math.floor(this.ctx.clock.now() / 1000),
        created_at: now,
        updated_at: now,
      });
    }
  }

  async views(rows: FolderRow[]): Promise<FolderView[]> {
    const counts = await this.ctx.store.folders.counts(rows.map((r) => r.id));
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      parent_id: r.parent_id,
      role: r.role,
      sort_order: r.sort_order,
      total_messages: counts.get(r.id)?.total ?? 0,
      unread_messages: counts.get(r.id)?.unread ?? 0,
      can_add_items: true,
    }));
  }

  /** A folder of this mailbox by id, or by role name (clients may say folder_id=inbox). */
  async resolve(mailboxId: string, idOrRole: string): Promise<FolderRow> {
    const row = (FOLDER_ROLES as readonly string[]).includes(idOrRole)
      ? await this.ctx.store.folders.byRole(mailboxId, idOrRole)
      : await this.ctx.store.folders.get(idOrRole);
    if (!row || row.mailbox_id !== mailboxId) throw notFound('Folder');
    return row;
  }

  async list(mailboxId: string, limit: number, cursor?: string): Promise<Page<FolderView>> {
    const after = decodeCursor(cursor);
    const all = await this.ctx.store.folders.listForMailbox(mailboxId);
    const start = after ? all.findIndex((r) => r.id === after.id) + 1 : 0;
    const page = pageOf(all.slice(start, start + limit + 1), limit, (r) => ({ v: r.sort_order ?? 0, id: r.id }));
    return { ...page, items: await this.views(page.items) };
  }

  async get(mailboxId: string, id: string): Promise<FolderView> {
    const [view] = await this.views([await this.resolve(mailboxId, id)]);
    return view!;
  }

  /** Create answers 422 for semantic problems; PATCH lists no 422, so it answers 400 and 409 (see spec-deviations.ts). */
  private async checkParent(mailboxId: string, parentId: string | null | undefined, selfId?: string): Promise<string | null> {
    if (parentId === undefined || parentId === null) return null;
    const parent = await this.ctx.store.folders.get(parentId);
    if (!parent || parent.mailbox_id !== mailboxId) {
      throw new AppError(selfId === undefined ? 'validation_error' : 'invalid_parameter', 'parent_id is not a folder of this mailbox', { param: 'parent_id', errors: [{ field: 'parent_id', code: 'custom', message: 'Unknown parent folder' }] });
    }
    // No cycles: walk up from the new parent; meeting ourselves means the move would loop.
    for (let cur: FolderRow | undefined = parent, depth = 0; cur && depth < 64; depth++) {
      if (cur.id === selfId) throw conflict('A folder cannot be moved under itself');
      cur = cur.parent_id ? await this.ctx.store.folders.get(cur.parent_id) : undefined;
    }
    return parent.id;
  }

  async create(mailboxId: string, input: { name: string; parent_id?: string | null; sort_order?: number }): Promise<FolderView> {
    const name = checkName(input.name, 'validation_error');
    const parentId = await this.checkParent(mailboxId, input.parent_id);
    if (await this.ctx.store.folders.byName(mailboxId, parentId, name)) throw new AppError('validation_error', 'A folder with this name already exists here', { param: 'name' });
    const now = iso(this.ctx.clock.now());
    const id = newId('fld');
    await this.ctx.store.folders.insert({
      id,
      mailbox_id: mailboxId,
      name,
      role: null,
      parent_id: parentId,
      sort_order: input.sort_order ?? CUSTOM_SORT_DEFAULT,
      next_uid: 1,
      uid_validity: Math.floor(this.ctx.clock.now() / 1000),
      created_at: now,
      updated_at: now,
    });
    return this.get(mailboxId, id);
  }

  async patch(mailboxId: string, id: string, input: { name?: string; parent_id?: string | null; sort_order?: number }): Promise<FolderView> {
    const row = await this.resolve(mailboxId, id);
    const patch: Partial<Pick<FolderRow, 'name' | 'parent_id' | 'sort_order' | 'updated_at'>> = { updated_at: iso(this.ctx.clock.now()) };
    if (input.name !== undefined) {
      const name = checkName(input.name, 'invalid_parameter');
      if (row.role !== null && name !== row.name) throw conflict('Role folders cannot be renamed');
      patch.name = name;
    }
    if (input.parent_id !== undefined) {
      if (row.role !== null && input.parent_id !== null) throw conflict('Role folders stay at the top level');
      patch.parent_id = await this.checkParent(mailboxId, input.parent_id, row.id);
    }
    if (input.sort_order !== undefined) patch.sort_order = input.sort_order;
    const name = patch.name ?? row.name;
    const parent = patch.parent_id === undefined ? row.parent_id : patch.parent_id;
    const clash = await this.ctx.store.folders.byName(mailboxId, parent, name);
    if (clash && clash.id !== row.id) throw conflict('A folder with this name already exists here');
    await this.ctx.store.folders.update(row.id, mailboxId, patch);
    return this.get(mailboxId, row.id);
  }

  /** Only empty custom folders without subfolders may go. */
  async delete(mailboxId: string, id: string): Promise<string> {
    const row = await this.resolve(mailboxId, id);
    if (row.role !== null) throw conflict('Built-in folders cannot be deleted');
    await this.ctx.store.transaction(async (tx) => {
      if ((await tx.folders.messageCount(row.id)) > 0) throw conflict('Folder is not empty');
      if ((await tx.folders.childCount(row.id)) > 0) throw conflict('Folder has subfolders');
      await tx.folders.delete(row.id, mailboxId);
    });
    return row.id;
  }
}
