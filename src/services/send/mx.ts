// Where direct delivery goes: the recipient domain's MX hosts by preference (RFC 5321 §5.1: the
// domain itself when it has no MX; a null MX "." refuses mail), each resolved to IPv4 addresses,
// all through the configured resolvers (MAILMUX_DNS_SERVERS).
import { Resolver } from 'node:dns/promises';
import { DNS_TIMEOUT_MS } from '../../config/limits.ts';

export type MxAnswer =
  | { ok: true; hosts: { name: string; address: string }[] }
  | { ok: false; temporary: boolean; reason: string };

const DEFINITE = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN', 'ENONAME']);
/** MX hosts tried per delivery (each with its first address). */
export const MX_HOSTS_MAX = 5;

export class MxResolver {
  private readonly resolver: Resolver;
  constructor(servers: string[]) {
    this.resolver = new Resolver({ timeout: DNS_TIMEOUT_MS, tries: 2 });
    if (servers.length > 0) this.resolver.setServers(servers);
  }

  private async addresses(name: string): Promise<string[] | 'none' | 'temporary'> {
    try {
      return await this.resolver.resolve4(name);
    } catch (err) {
      return DEFINITE.has((err as NodeJS.ErrnoException).code ?? '') ? 'none' : 'temporary';
    }
  }

  async lookup(domain: string): Promise<MxAnswer> {
    let mx: { exchange: string; priority: number }[];
    try {
      mx = await this.resolver.resolveMx(domain);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (!DEFINITE.has(code)) return { ok: false, temporary: true, reason: `MX lookup for ${domain} failed (${code || 'error'})` };
      if (code === 'ENOTFOUND' || code === 'NXDOMAIN') return { ok: false, temporary: false, reason: `the domain ${domain} does not exist` };
      mx = [];
    }
    if (mx.length === 1 && (mx[0]!.exchange === '' || mx[0]!.exchange === '.')) return { ok: false, temporary: false, reason: `${domain} accepts no mail (null MX)` };
    const names = mx.length > 0 ? [...mx].sort((a, b) => a.priority - b.priority).map((m) => m.exchange.toLowerCase()) : [domain];
    const hosts: { name: string; address: string }[] = [];
    let temporary = false;
    for (const name of names.slice(0, MX_HOSTS_MAX)) {
      const a = await this.addresses(name);
      if (a === 'temporary') temporary = true;
      else if (a !== 'none' && a[0]) hosts.push({ name, address: a[0] });
    }
    if (hosts.length > 0) return { ok: true, hosts };
    return { ok: false, temporary, reason: temporary ? `address lookup for the MX of ${domain} failed` : `no address for the MX of ${domain}` };
  }
}
