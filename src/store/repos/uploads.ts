// Outbound attachment uploads and presigned upload intents (see migration 007).
import type { UploadIntentsTable, UploadsTable } from '../schema.ts';
import type { RepoContext } from './common.ts';

export type UploadRow = UploadsTable;
export type UploadIntentRow = UploadIntentsTable;

export class UploadsRepo {
  private readonly ctx: RepoContext;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
  }

  async insert(row: UploadRow): Promise<void> {
    await this.ctx.db.insertInto('uploads').values(row).execute();
  }

  /** An upload of this mailbox that has not expired at `now` (ISO). */
  async getLive(id: string, mailboxId: string, now: string): Promise<UploadRow | undefined> {
    return this.ctx.db.selectFrom('uploads').selectAll().where('id', '=', id).where('mailbox_id', '=', mailboxId).where('expires_at', '>', now).executeTakeFirst();
  }

  async get(id: string): Promise<UploadRow | undefined> {
    return this.ctx.db.selectFrom('uploads').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async insertIntent(row: UploadIntentRow): Promise<void> {
    await this.ctx.db.insertInto('upload_intents').values(row).execute();
  }

  async getIntent(id: string): Promise<UploadIntentRow | undefined> {
    return this.ctx.db.selectFrom('upload_intents').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Marks the intent completed by `uploadId` unless another PUT got there first; true when this one did. */
  async completeIntent(id: string, uploadId: string): Promise<boolean> {
    const r = await this.ctx.db.updateTable('upload_intents').set({ upload_id: uploadId }).where('id', '=', id).where('upload_id', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Drops expired uploads and intents; returns the blob digests the dropped uploads referred to. */
  async purgeExpired(now: string, limit = 500): Promise<string[]> {
    const rows = await this.ctx.db.selectFrom('uploads').select(['id', 'sha256']).where('expires_at', '<=', now).limit(limit).execute();
    if (rows.length > 0) await this.ctx.db.deleteFrom('uploads').where('id', 'in', rows.map((r) => r.id)).execute();
    await this.ctx.db.deleteFrom('upload_intents').where('expires_at', '<=', now).execute();
    return rows.map((r) => r.sha256);
  }

  async digestInUse(sha256: string): Promise<boolean> {
    const r = await this.ctx.db.selectFrom('uploads').select('id').where('sha256', '=', sha256).limit(1).executeTakeFirst();
    return r !== undefined;
  }
}
