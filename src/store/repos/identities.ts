// Sender identities of a mailbox (one default identity is made with the mailbox).
import type { IdentitiesTable } from '../schema.ts';
import type { RepoContext } from './common.ts';
import { ChangesRepo } from './changes.ts';

export type IdentityRow = IdentitiesTable;

export class IdentitiesRepo {
  private readonly ctx: RepoContext;
  private readonly changes: ChangesRepo;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
    this.changes = new ChangesRepo(ctx);
  }

  async insert(row: IdentityRow): Promise<void> {
    await this.ctx.db.insertInto('identities').values(row).execute();
    await this.changes.append({ mailboxId: row.mailbox_id, type: 'identity', objectId: row.id, kind: 'created' });
  }

  async listForMailbox(mailboxId: string): Promise<IdentityRow[]> {
    return this.ctx.db.selectFrom('identities').selectAll().where('mailbox_id', '=', mailboxId).orderBy('created_at', 'asc').orderBy('id', 'asc').execute();
  }

  async update(id: string, mailboxId: string, patch: Partial<Pick<IdentityRow, 'name' | 'text_signature' | 'html_signature' | 'updated_at'>>): Promise<void> {
    await this.ctx.db.updateTable('identities').set(patch).where('id', '=', id).execute();
    await this.changes.append({ mailboxId, type: 'identity', objectId: id, kind: 'updated' });
  }
}
