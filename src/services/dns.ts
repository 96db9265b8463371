// DNS lookups for domain verification (and later MX delivery) through the configured resolvers.
// Each answer says whether a missing record is definite (NXDOMAIN/NODATA) or temporary.
import { Resolver } from 'node:dns/promises';
import { DNS_TIMEOUT_MS } from '../config/limits.ts';

export type Lookup<T> = { ok: true; records: T[] } | { ok: false; temporary: boolean; error: string };

const DEFINITE = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN', 'ENONAME']);

export class Dns {
  private readonly resolver: Resolver;
  constructor(servers: string[]) {
    this.resolver = new Resolver({ timeout: DNS_TIMEOUT_MS, tries: 2 });
    if (servers.length > 0) this.resolver.setServers(servers);
  }

  private async run<T>(fn: () => Promise<T[]>): Promise<Lookup<T>> {
    try {
      return { ok: true, records: await fn() };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
      if (DEFINITE.has(code)) return { ok: true, records: [] };
      return { ok: false, temporary: true, error: code };
    }
  }

  /** TXT records, each with its character-strings joined. */
  txt(name: string): Promise<Lookup<string>> {
    return this.run(async () => (await this.resolver.resolveTxt(name)).map((chunks) => chunks.join('')));
  }

  mx(name: string): Promise<Lookup<{ exchange: string; priority: number }>> {
    return this.run(() => this.resolver.resolveMx(name));
  }
}
