// Idempotency records: claimed before the handler runs (state in_flight), completed with the
// response it produced. The primary key (scope, key) makes the claim atomic on both backends.
import type { IdempotencyTable } from '../schema.ts';
import type { RepoContext } from './common.ts';

export type IdempotencyRow = IdempotencyTable;

export class IdempotencyRepo {
  private readonly ctx: RepoContext;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
  }

  /** Returns null when the claim succeeded, or the existing record. Expired records are replaced. */
  async claim(row: IdempotencyRow): Promise<IdempotencyRow | null> {
    await this.ctx.db
      .deleteFrom('idempotency_keys')
      .where('scope', '=', row.scope)
      .where('key', '=', row.key)
      .where('expires_at', '<=', row.created_at)
      .execute();
    // ON CONFLICT rather than catching the unique violation: on PostgreSQL a failed statement
    // aborts the surrounding transaction, and a claim may run inside one.
    const inserted = await this.ctx.db
      .insertInto('idempotency_keys')
      .values(row)
      .onConflict((oc) => oc.columns(['scope', 'key']).doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 1) return null;
    const existing = await this.ctx.db
      .selectFrom('idempotency_keys')
      .selectAll()
      .where('scope', '=', row.scope)
      .where('key', '=', row.key)
      .executeTakeFirst();
    // Deleted between our insert and select: treat as claimed by someone else still in flight.
    return existing ?? { ...row, state: 'in_flight' };
  }

  async complete(scope: string, key: string, statusCode: number, response: string): Promise<void> {
    await this.ctx.db
      .updateTable('idempotency_keys')
      .set({ state: 'done', status_code: statusCode, response })
      .where('scope', '=', scope)
      .where('key', '=', key)
      .execute();
  }

  async release(scope: string, key: string): Promise<void> {
    await this.ctx.db.deleteFrom('idempotency_keys').where('scope', '=', scope).where('key', '=', key).execute();
  }

  async purgeExpired(now: string): Promise<number> {
    const r = await this.ctx.db.deleteFrom('idempotency_keys').where('expires_at', '<=', now).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
