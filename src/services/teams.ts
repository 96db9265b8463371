// Teams and root keys: the first start creates a team and its first root key; the CLI mints,
// lists and revokes more. Secrets are returned once and stored only as hashes.
import { iso } from '../core/clock.ts';
import { hashSecret, newId, newSecret } from '../core/ids.ts';
import { notFound } from '../core/errors.ts';
import type { Repos } from '../store/index.ts';
import type { ServiceContext } from './context.ts';

export interface IssuedKey {
  id: string;
  teamId: string;
  secret: string;
  keyPrefix: string;
  keySuffix: string;
}

export interface RootKeyInfo {
  id: string;
  team_id: string;
  name: string | null;
  key_prefix: string;
  key_suffix: string;
  created_at: string;
  revoked_at: string | null;
}

export function keyFragments(secret: string): { keyPrefix: string; keySuffix: string } {
  return { keyPrefix: secret.slice(0, secret.lastIndexOf('_') + 5), keySuffix: secret.slice(-4) };
}

export class TeamsService {
  private readonly ctx: ServiceContext;
  constructor(ctx: ServiceContext) {
    this.ctx = ctx;
  }

  /** On an empty database: create the first team and a root key. Returns the key only when it made one. */
  async bootstrap(): Promise<IssuedKey | null> {
    return this.ctx.store.transaction(async (tx) => {
      if ((await tx.teams.count()) > 0) return null;
      const teamId = newId('team');
      await tx.teams.insert({ id: teamId, name: 'Default team', created_at: iso(this.ctx.clock.now()) });
      return this.insertRootKey(tx, teamId, 'initial root key');
    });
  }

  async defaultTeamId(): Promise<string> {
    const team = await this.ctx.store.teams.first();
    if (!team) throw notFound('team');
    return team.id;
  }

  async createRootKey(name: string | null, teamId?: string): Promise<IssuedKey> {
    const team = teamId ?? (await this.defaultTeamId());
    if (!(await this.ctx.store.teams.get(team))) throw notFound('team');
    return this.ctx.store.transaction((tx) => this.insertRootKey(tx, team, name));
  }

  private async insertRootKey(tx: Pick<Repos, 'keys'>, teamId: string, name: string | null): Promise<IssuedKey> {
    const secret = newSecret('root');
    const id = newId('smx');
    const { keyPrefix, keySuffix } = keyFragments(secret);
    await tx.keys.insert({
      id,
      team_id: teamId,
      kind: 'root',
      mailbox_id: null,
      name,
      secret_hash: hashSecret(secret),
      key_prefix: keyPrefix,
      key_suffix: keySuffix,
      created_at: iso(this.ctx.clock.now()),
      revoked_at: null,
    });
    return { id, teamId, secret, keyPrefix, keySuffix };
  }

  async listRootKeys(): Promise<RootKeyInfo[]> {
    const rows = await this.ctx.store.keys.listRoot();
    return rows.map((r) => ({
      id: r.id,
      team_id: r.team_id,
      name: r.name,
      key_prefix: r.key_prefix,
      key_suffix: r.key_suffix,
      created_at: r.created_at,
      revoked_at: r.revoked_at,
    }));
  }

  async revokeRootKey(id: string): Promise<void> {
    const row = await this.ctx.store.keys.get(id);
    if (!row || row.kind !== 'root') throw notFound('root key');
    await this.ctx.store.keys.revoke(id, iso(this.ctx.clock.now()));
  }
}
