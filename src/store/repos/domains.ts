// Domains: a team's custom domains and the configured default domain (team_id null).
import { sql } from 'kysely';
import type { DomainsTable } from '../schema.ts';
import type { ListQuery, RepoContext } from './common.ts';
import { ChangesRepo } from './changes.ts';
import { runCompiled } from './compiled.ts';
import { readCurrent } from './cached-read.ts';

export type DomainRow = DomainsTable;

export class DomainsRepo {
  private readonly changes: ChangesRepo;
  private readonly ctx: RepoContext;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
    this.changes = new ChangesRepo(ctx);
  }

  async insert(row: DomainRow): Promise<void> {
    await this.ctx.db.insertInto('domains').values(row).execute();
    await this.changes.append({ teamId: row.team_id, type: 'domain', objectId: row.id, kind: 'created' });
  }

  async get(id: string): Promise<DomainRow | undefined> {
    return this.ctx.db.selectFrom('domains').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async byName(domain: string): Promise<DomainRow | undefined> {
    // Every message sent looks up its sender's domain here: compiled once.
    const r = await runCompiled<DomainRow>(this.ctx.db, this.ctx.dialect, 'domains.by_name', (d) => d.selectFrom('domains').selectAll().where('domain', '=', domain), [domain]);
    return r.rows[0];
  }

  /**
   * Whether mail for this domain is received here: a verified send_receive domain not being deleted.
   * Asked at every RCPT; reads no columns (a domain row carries its DKIM keys, ~3 KB).
   */
  async receivesMail(domain: string): Promise<boolean> {
    // Every inbound recipient asks: a point read on the fast path, never kept (cached-read.ts readCurrent).
    const r = await readCurrent<{ one: number }>(
      this.ctx,
      'domains_receives_mail',
      (d) =>
        d
          .selectFrom('domains')
          .select(sql<number>`1`.as('one'))
          .where('domain', '=', domain)
          .where('mode', '=', sql.lit('send_receive'))
          .where('verification_status', '=', sql.lit('verified'))
          .where('deleting', '=', sql.lit(0)),
      [domain],
    );
    return r !== undefined;
  }

  async listAllCustom(): Promise<DomainRow[]> {
    return this.ctx.db.selectFrom('domains').selectAll().where('team_id', 'is not', null).where('deleting', '=', 0).execute();
  }

  async countForTeam(teamId: string): Promise<number> {
    const r = await this.ctx.db
      .selectFrom('domains')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('team_id', '=', teamId)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  /** Newest first (created_at desc, id desc). */
  async listForTeam(teamId: string, q: ListQuery): Promise<DomainRow[]> {
    let query = this.ctx.db
      .selectFrom('domains')
      .selectAll()
      .where('team_id', '=', teamId)
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(q.limit + 1);
    if (q.after) {
      const after = q.after;
      query = query.where((eb) =>
        eb.or([eb('created_at', '<', String(after.v)), eb.and([eb('created_at', '=', String(after.v)), eb('id', '<', after.id)])]),
      );
    }
    return query.execute();
  }

  async update(id: string, patch: Partial<Omit<DomainRow, 'id' | 'team_id' | 'created_at'>>): Promise<void> {
    const row = await this.get(id);
    await this.ctx.db.updateTable('domains').set(patch).where('id', '=', id).execute();
    await this.changes.append({ teamId: row?.team_id ?? null, type: 'domain', objectId: id, kind: 'updated' });
  }

  async delete(id: string): Promise<void> {
    const row = await this.get(id);
    await this.ctx.db.deleteFrom('filter_sets').where('owner_kind', '=', 'domain').where('owner_id', '=', id).execute();
    await this.ctx.db.deleteFrom('domains').where('id', '=', id).execute();
    await this.changes.append({ teamId: row?.team_id ?? null, type: 'domain', objectId: id, kind: 'destroyed' });
  }
}
