// Sender-filter sets, one per mailbox or domain. Rules are a JSON array (at most 1000): small
// enough to load whole and match in memory at SMTP RCPT time.
import type { FilterSetsTable } from '../schema.ts';
import type { RepoContext } from './common.ts';
import { ChangesRepo } from './changes.ts';
import { readCurrent } from './cached-read.ts';

export type FilterSetRow = FilterSetsTable;

export class FiltersRepo {
  private readonly changes: ChangesRepo;
  private readonly ctx: RepoContext;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
    this.changes = new ChangesRepo(ctx);
  }

  async get(ownerKind: FilterSetRow['owner_kind'], ownerId: string): Promise<FilterSetRow | undefined> {
    // Read for every inbound recipient (its mailbox's and its domain's): a point read on the fast path, never kept (cached-read.ts readCurrent).
    return readCurrent(this.ctx, 'filter_sets_get', (d) => d.selectFrom('filter_sets').selectAll().where('owner_kind', '=', ownerKind).where('owner_id', '=', ownerId), [ownerKind, ownerId]);
  }

  async put(row: FilterSetRow, teamId: string | null): Promise<void> {
    await this.ctx.db
      .insertInto('filter_sets')
      .values(row)
      .onConflict((oc) => oc.columns(['owner_kind', 'owner_id']).doUpdateSet({ mode: row.mode, rules: row.rules, updated_at: row.updated_at }))
      .execute();
    await this.changes.append({
      teamId,
      mailboxId: row.owner_kind === 'mailbox' ? row.owner_id : null,
      type: `${row.owner_kind}_filter`,
      objectId: row.owner_id,
      kind: 'updated',
    });
  }

  async delete(ownerKind: FilterSetRow['owner_kind'], ownerId: string): Promise<void> {
    await this.ctx.db.deleteFrom('filter_sets').where('owner_kind', '=', ownerKind).where('owner_id', '=', ownerId).execute();
  }
}
