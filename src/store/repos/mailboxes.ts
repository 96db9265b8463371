// Mailboxes. A deleted mailbox keeps its row (status 'deleted') for audit; its address is free once
// its data has been purged (cleanup_pending = 0).
import type { MailboxesTable } from '../schema.ts';
import { DELETED, type ListQuery, type RepoContext } from './common.ts';
import { ChangesRepo } from './changes.ts';
import { runCompiled } from './compiled.ts';
import { readCurrent, readFirst } from './cached-read.ts';

export type MailboxRow = MailboxesTable;

export class MailboxesRepo {
  private readonly changes: ChangesRepo;
  private readonly ctx: RepoContext;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
    this.changes = new ChangesRepo(ctx);
  }

  async insert(row: MailboxRow): Promise<void> {
    await this.ctx.db.insertInto('mailboxes').values(row).execute();
    await this.changes.append({ teamId: row.team_id, mailboxId: row.id, type: 'mailbox', objectId: row.id, kind: 'created' });
  }

  /** Read by every mailbox-key request (authentication) and most mailbox routes: a cached-shape point read. */
  async get(id: string): Promise<MailboxRow | undefined> {
    return readFirst(this.ctx, 'mailboxes_by_id', (db) => db.selectFrom('mailboxes').selectAll().where('id', '=', id), [id]);
  }

  /** Several by id, in one read (ingest reads a batch's mailboxes together). */
  async getMany(ids: readonly string[]): Promise<MailboxRow[]> {
    if (ids.length === 0) return [];
    const r = await runCompiled<MailboxRow>(this.ctx.db, this.ctx.dialect, `mailboxes.by_ids x${ids.length}`, (d) => d.selectFrom('mailboxes').selectAll().where('id', 'in', ids), ids);
    return r.rows;
  }

  /** The live (not deleted) mailbox with this address. */
  async liveByEmail(email: string): Promise<MailboxRow | undefined> {
    // Every inbound recipient is looked up here: a point read on the fast path, never kept (cached-read.ts readCurrent).
    return readCurrent(this.ctx, 'mailboxes_live_by_email', (d) => d.selectFrom('mailboxes').selectAll().where('email', '=', email).where('status', '<>', DELETED), [email]);
  }

  /** A deleted mailbox with this address whose data is still being purged. */
  async pendingCleanupByEmail(email: string): Promise<MailboxRow | undefined> {
    return this.ctx.db.selectFrom('mailboxes').selectAll().where('email', '=', email).where('status', '=', 'deleted').where('cleanup_pending', '=', 1).executeTakeFirst();
  }

  async listPendingCleanup(): Promise<MailboxRow[]> {
    return this.ctx.db.selectFrom('mailboxes').selectAll().where('cleanup_pending', '=', 1).execute();
  }

  async countLiveForTeam(teamId: string): Promise<number> {
    const r = await this.ctx.db
      .selectFrom('mailboxes')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('team_id', '=', teamId)
      .where('status', '<>', DELETED)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async countActiveForDomain(domainId: string): Promise<number> {
    const r = await this.ctx.db
      .selectFrom('mailboxes')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('domain_id', '=', domainId)
      .where('status', '=', 'active')
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async countLiveForDomain(domainId: string): Promise<number> {
    const r = await this.ctx.db
      .selectFrom('mailboxes')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('domain_id', '=', domainId)
      .where('status', '<>', DELETED)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** Newest first (created_at desc, id desc). */
  async listForTeam(teamId: string, q: ListQuery & { includeDeleted: boolean }): Promise<MailboxRow[]> {
    let query = this.ctx.db
      .selectFrom('mailboxes')
      .selectAll()
      .where('team_id', '=', teamId)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(q.limit + 1);
    if (!q.includeDeleted) query = query.where('status', '<>', DELETED);
    if (q.after) {
      const after = q.after;
      query = query.where((eb) =>
        eb.or([eb('created_at', '<', String(after.v)), eb.and([eb('created_at', '=', String(after.v)), eb('id', '<', after.id)])]),
      );
    }
    return query.execute();
  }

  /**
   * After its messages are gone: the folders, identities, threads, change and event logs, the
   * submissions with their queued recipients (nothing more is sent from a deleted mailbox) and the
   * upload intents of a deleted mailbox. Its uploads are expired, so the upload purge frees their
   * blobs. Delivery logs stay: they are the team's record of what was sent.
   */
  async purgeRows(id: string): Promise<void> {
    for (const table of ['folders', 'identities', 'threads', 'changes', 'change_horizons', 'events', 'submissions', 'outbound_recipients', 'upload_intents'] as const) {
      await this.ctx.db.deleteFrom(table).where('mailbox_id', '=', id).execute();
    }
    await this.ctx.db.updateTable('uploads').set({ expires_at: '1970-01-01T00:00:00.000Z' }).where('mailbox_id', '=', id).execute();
  }

  /** Quota accounting: bytes stored by this mailbox (kept exact through ingest and delete). */
  async addUsedBytes(id: string, delta: number): Promise<void> {
    await runCompiled(this.ctx.db, this.ctx.dialect, 'mailboxes.add_used_bytes', (d) => d.updateTable('mailboxes').set((eb) => ({ used_bytes: eb('used_bytes', '+', delta) })).where('id', '=', id), [delta, id]);
  }

  async update(id: string, patch: Partial<Omit<MailboxRow, 'id' | 'team_id' | 'created_at'>>): Promise<void> {
    const row = await this.get(id);
    await this.ctx.db.updateTable('mailboxes').set(patch).where('id', '=', id).execute();
    await this.changes.append({ teamId: row?.team_id ?? null, mailboxId: id, type: 'mailbox', objectId: id, kind: 'updated' });
  }
}
