// Teams and their API keys (root keys for a team, mailbox keys for one mailbox).
import type { RepoContext } from './common.ts';
import type { ApiKeysTable, TeamsTable } from '../schema.ts';

export type TeamRow = TeamsTable;
export type ApiKeyRow = ApiKeysTable;

export class TeamsRepo {
  private readonly ctx: RepoContext;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
  }

  async insert(row: TeamRow): Promise<void> {
    await this.ctx.db.insertInto('teams').values(row).execute();
  }

  async first(): Promise<TeamRow | undefined> {
    return this.ctx.db.selectFrom('teams').selectAll().orderBy('created_at', 'asc').orderBy('id', 'asc').limit(1).executeTakeFirst();
  }

  async get(id: string): Promise<TeamRow | undefined> {
    return this.ctx.db.selectFrom('teams').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async count(): Promise<number> {
    const r = await this.ctx.db.selectFrom('teams').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(r.n);
  }
}

export class KeysRepo {
  private readonly ctx: RepoContext;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
  }

  async insert(row: ApiKeyRow): Promise<void> {
    await this.ctx.db.insertInto('api_keys').values(row).execute();
  }

  async byHash(secretHash: string): Promise<ApiKeyRow | undefined> {
    return this.ctx.db.selectFrom('api_keys').selectAll().where('secret_hash', '=', secretHash).executeTakeFirst();
  }

  async get(id: string): Promise<ApiKeyRow | undefined> {
    return this.ctx.db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async listRoot(teamId?: string): Promise<ApiKeyRow[]> {
    let q = this.ctx.db.selectFrom('api_keys').selectAll().where('kind', '=', 'root').orderBy('created_at', 'asc');
    if (teamId !== undefined) q = q.where('team_id', '=', teamId);
    return q.execute();
  }

  async countActiveMailboxKeys(teamId: string): Promise<number> {
    const r = await this.ctx.db
      .selectFrom('api_keys')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('team_id', '=', teamId)
      .where('kind', '=', 'mailbox')
      .where('revoked_at', 'is', null)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async revoke(id: string, at: string): Promise<void> {
    await this.ctx.db.updateTable('api_keys').set({ revoked_at: at }).where('id', '=', id).where('revoked_at', 'is', null).execute();
  }

  /** Of the given mailbox keys, those that still work: not revoked, and their mailbox active. */
  async liveMailboxKeys(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.ctx.db
      .selectFrom('api_keys')
      .innerJoin('mailboxes', 'mailboxes.id', 'api_keys.mailbox_id')
      .select('api_keys.id')
      .where('api_keys.id', 'in', ids)
      .where('api_keys.revoked_at', 'is', null)
      .where('mailboxes.status', '=', 'active')
      .execute();
    return new Set(rows.map((r) => r.id));
  }

  async revokeAllForMailbox(mailboxId: string, at: string): Promise<void> {
    await this.ctx.db.updateTable('api_keys').set({ revoked_at: at }).where('mailbox_id', '=', mailboxId).where('revoked_at', 'is', null).execute();
  }
}
