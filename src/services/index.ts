// The services a front-end or worker may call, built once from the store and configuration.
import type { Clock } from '../core/clock.ts';
import type { Config } from '../config/config.ts';
import type { Store } from '../store/index.ts';
import type { Logger, ServiceContext } from './context.ts';
import { CredentialsService } from './credentials.ts';
import { Dns } from './dns.ts';
import { DomainsService } from './domains.ts';
import { FiltersService } from './filters.ts';
import { MailboxesService } from './mailboxes.ts';
import { TeamsService } from './teams.ts';
import { FoldersService } from './mail/folders.ts';
import { IngestService } from './mail/ingest.ts';
import { MessagesService } from './mail/messages.ts';
import { ThreadsService } from './mail/threads.ts';
import { AccountService } from './mail/account.ts';
import { EventsService } from './events.ts';
import { WebhooksService } from './webhooks.ts';
import { RealtimeService } from './realtime.ts';
import { SyncService } from './mail/sync.ts';
import { OutboundService } from './send/outbound.ts';
import { ProvidersService } from './send/providers.ts';
import { SendLogService } from './send/logs.ts';
import { UploadsService } from './send/uploads.ts';
import { SendService } from './send/compose.ts';

export interface Services {
  store: Store;
  config: Config;
  clock: Clock;
  log: Logger;
  dns: Dns;
  teams: TeamsService;
  credentials: CredentialsService;
  domains: DomainsService;
  mailboxes: MailboxesService;
  filters: FiltersService;
  folders: FoldersService;
  ingest: IngestService;
  messages: MessagesService;
  threads: ThreadsService;
  account: AccountService;
  events: EventsService;
  webhooks: WebhooksService;
  realtime: RealtimeService;
  sync: SyncService;
  outbound: OutboundService;
  providers: ProvidersService;
  sendLog: SendLogService;
  uploads: UploadsService;
  send: SendService;
}

export function createServices(ctx: ServiceContext, hooks: { onMailboxDeleted?: () => void } = {}): Services {
  const dns = new Dns(ctx.config.dnsServers);
  const events = new EventsService(ctx);
  const webhooks = new WebhooksService(ctx, events);
  // The webhook outbox is written in every event's transaction.
  events.addFanout((tx, event) => webhooks.fanout(tx, event));
  const folders = new FoldersService(ctx);
  const messages = new MessagesService(ctx, folders);
  const account = new AccountService(ctx);
  const mailboxes = new MailboxesService(ctx, {
    ...(hooks.onMailboxDeleted ? { onDeleted: hooks.onMailboxDeleted } : {}),
    provision: async (tx, mailbox) => {
      await folders.createDefaults(tx, mailbox.id);
      await account.createDefaultIdentity(tx, mailbox);
    },
    purgeData: (mailboxId) => messages.purgeMailbox(mailboxId),
  });
  const ingest = new IngestService(ctx, events);
  const outbound = new OutboundService(ctx, ingest);
  const uploads = new UploadsService(ctx);
  return {
    ...ctx,
    dns,
    teams: new TeamsService(ctx),
    credentials: new CredentialsService(ctx),
    domains: new DomainsService(ctx, dns),
    mailboxes,
    filters: new FiltersService(ctx),
    folders,
    ingest,
    messages,
    threads: new ThreadsService(ctx, messages),
    account,
    events,
    webhooks,
    realtime: new RealtimeService(ctx, events, messages),
    sync: new SyncService(ctx, messages),
    outbound,
    providers: new ProvidersService(ctx),
    sendLog: new SendLogService(ctx),
    uploads,
    send: new SendService(ctx, uploads, outbound),
  };
}
