// Server-wide settings that must survive restarts and be shared by every process (e.g. the key
// that signs attachment download tokens). First writer wins.
import type { RepoContext } from './common.ts';

export class SettingsRepo {
  private readonly ctx: RepoContext;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
  }

  async getOrCreate(key: string, make: () => string): Promise<string> {
    const existing = await this.ctx.db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst();
    if (existing) return existing.value;
    await this.ctx.db.insertInto('settings').values({ key, value: make() }).onConflict((oc) => oc.column('key').doNothing()).execute();
    const row = await this.ctx.db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirstOrThrow();
    return row.value;
  }
}
