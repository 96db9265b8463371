// The services a front-end or worker may call, built once from the store and configuration.
import type { Clock } from '../core/clock.ts';
import type { Config } from '../config/config.ts';
import type { Store } from '../store/index.ts';
import type { Logger, ServiceContext } from './context.ts';
import { CredentialsService } from './credentials.ts';
import { Dns } from './dns.ts';
import { DomainsService } from './domains.ts';
import { FiltersService } from './filters.ts';
import { MailboxesService, type MailboxHooks } from './mailboxes.ts';
import { TeamsService } from './teams.ts';

export interface Services {
  store: Store;
  config: Config;
  clock: Clock;
  log: Logger;
  teams: TeamsService;
  credentials: CredentialsService;
  domains: DomainsService;
  mailboxes: MailboxesService;
  filters: FiltersService;
}

export function createServices(ctx: ServiceContext, hooks: { mailboxes?: MailboxHooks } = {}): Services {
  const dns = new Dns(ctx.config.dnsServers);
  return {
    ...ctx,
    teams: new TeamsService(ctx),
    credentials: new CredentialsService(ctx),
    domains: new DomainsService(ctx, dns),
    mailboxes: new MailboxesService(ctx, hooks.mailboxes),
    filters: new FiltersService(ctx),
  };
}
