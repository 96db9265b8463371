// Sending accounts (providers): SMTP relays a team delivers through.
import type { ProvidersTable } from '../schema.ts';
import type { ListQuery, RepoContext } from './common.ts';

export type ProviderRow = ProvidersTable;

export class ProvidersRepo {
  private readonly ctx: RepoContext;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
  }

  async insert(row: ProviderRow): Promise<void> {
    await this.ctx.db.insertInto('providers').values(row).execute();
  }

  async get(id: string): Promise<ProviderRow | undefined> {
    return this.ctx.db.selectFrom('providers').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async countForTeam(teamId: string): Promise<number> {
    const r = await this.ctx.db.selectFrom('providers').select((eb) => eb.fn.countAll<number>().as('n')).where('team_id', '=', teamId).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** Newest first (created_at desc, id desc), limit + 1 rows. */
  async listForTeam(teamId: string, q: ListQuery & { status?: string; type?: string }): Promise<ProviderRow[]> {
    let query = this.ctx.db.selectFrom('providers').selectAll().where('team_id', '=', teamId).orderBy('created_at', 'desc').orderBy('id', 'desc').limit(q.limit + 1);
    if (q.status) query = query.where('status', '=', q.status as ProviderRow['status']);
    if (q.type) query = query.where('type', '=', q.type);
    if (q.after) {
      const after = q.after;
      query = query.where((eb) => eb.or([eb('created_at', '<', String(after.v)), eb.and([eb('created_at', '=', String(after.v)), eb('id', '<', after.id)])]));
    }
    return query.execute();
  }

  /** Every account of the team (a team holds at most MAILMUX_MAX_PROVIDERS_PER_TEAM). */
  async allForTeam(teamId: string): Promise<ProviderRow[]> {
    return this.ctx.db.selectFrom('providers').selectAll().where('team_id', '=', teamId).execute();
  }

  async activeForTeam(teamId: string): Promise<ProviderRow[]> {
    return this.ctx.db.selectFrom('providers').selectAll().where('team_id', '=', teamId).where('status', '=', 'active').orderBy('created_at').orderBy('id').execute();
  }

  async update(id: string, patch: Partial<Omit<ProviderRow, 'id' | 'team_id' | 'created_at'>>): Promise<void> {
    await this.ctx.db.updateTable('providers').set(patch).where('id', '=', id).execute();
  }

  async delete(id: string): Promise<void> {
    await this.ctx.db.deleteFrom('providers').where('id', '=', id).execute();
  }
}
