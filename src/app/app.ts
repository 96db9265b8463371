// The composition root: config -> store -> services -> workers -> protocols.
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { systemClock, type Clock } from '../core/clock.ts';
import type { Config } from '../config/config.ts';
import { openStore, type Store } from '../store/index.ts';
import { createServices, type Services } from '../services/index.ts';
import type { Logger } from '../services/context.ts';
import type { IssuedKey } from '../services/teams.ts';
import { MaintenanceWorker } from '../workers/maintenance.ts';
import { OutboundWorker } from '../workers/outbound.ts';
import { WebhookWorker } from '../workers/webhooks.ts';
import { buildHttpServer } from '../protocols/http/server.ts';
import { startInboundSmtp, type InboundSmtp } from '../protocols/smtp/inbound.ts';
import { startSubmission, type SubmissionSmtp } from '../protocols/smtp/submission.ts';
import { IngestWriterThread } from './ingest-writer.ts';

export interface RunningMailmux {
  services: Services;
  httpUrl: string;
  /** The inbound SMTP (MX) port actually bound. */
  smtpPort: number;
  /** SMTP submission ports actually bound: STARTTLS (587-style) and implicit TLS (465-style). */
  submissionPort: number;
  submissionsPort: number;
  /** Set when this start created the first team: the root key, shown once. */
  initialRootKey: string | null;
  close(): Promise<void>;
}

export function createLogger(config: Config): Logger {
  return pino({ level: config.logLevel, base: { service: 'mailmux' } });
}

/** Store + services, without listeners: what the CLI's key commands need. Close with services.ingest.close(), then store.close(). */
export async function openServices(config: Config, opts: { log?: Logger; clock?: Clock; pgSchema?: string; maintenance?: { kick(): void } } = {}): Promise<{ store: Store; services: Services }> {
  const clock = opts.clock ?? systemClock;
  const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, clock, sqliteVfs: config.sqliteVfs, ...(opts.pgSchema ? { pgSchema: opts.pgSchema } : {}) });
  const kick = { fn: (): void => undefined };
  const services = createServices(
    { store, config, clock, log: opts.log ?? createLogger(config) },
    { onMailboxDeleted: () => kick.fn() },
  );
  if (opts.maintenance) kick.fn = () => opts.maintenance?.kick();
  // SQLite: ingest's batches are written by a thread of their own (ingest-writer.ts), started at
  // the first delivery; services.ingest.close() stops it.
  if (store.sideWriter && config.sqliteWriterThread) services.ingest.useWriter(new IngestWriterThread(services, store.sideWriter));
  return { store, services };
}

export async function startMailmux(config: Config, opts: { log?: Logger; clock?: Clock; pgSchema?: string } = {}): Promise<RunningMailmux> {
  const relay = { kick: (): void => undefined };
  const { store, services } = await openServices(config, { ...opts, maintenance: relay });
  const maintenance = new MaintenanceWorker(services);
  relay.kick = () => maintenance.kick();
  const webhookWorker = new WebhookWorker(services);
  const outboundWorker = new OutboundWorker(services);
  const http = await buildHttpServer(services);
  let issued: IssuedKey | null;
  let smtp: InboundSmtp | null = null;
  let submission: SubmissionSmtp | null = null;
  try {
    await services.domains.ensureDefaultDomain();
    await services.events.start();
    await http.listen({ host: config.listenHost, port: config.httpPort });
    smtp = await startInboundSmtp(services);
    submission = await startSubmission(services);
    // Only once the API is reachable: the first root key is shown once, so a start that fails
    // (a busy port) must not mint it. On a first start no key exists before this, so early
    // requests get 401.
    issued = await services.teams.bootstrap();
    maintenance.start();
    webhookWorker.start();
    await outboundWorker.start();
  } catch (err) {
    // Release everything, or an open database pool would keep a failed process alive.
    await maintenance.stop();
    await webhookWorker.stop();
    await outboundWorker.stop();
    await smtp?.close();
    await submission?.close();
    await http.close();
    await services.ingest.close();
    await services.events.stop();
    await store.close();
    throw err;
  }
  const addr = http.server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  services.log.info({ event: 'http.listening', address: addr.address, port: addr.port });
  if (store.sqliteVfs) services.log.info({ event: 'sqlite.vfs', vfs: store.sqliteVfs.vfs, ...(store.sqliteVfs.reason ? { reason: store.sqliteVfs.reason } : {}) });
  // With MAILMUX_HTTP_PORT=0 the configured public URL names port 0; links must name the bound one.
  if (/:0$/.test(config.publicUrl)) config.publicUrl = config.publicUrl.replace(/:0$/, `:${addr.port}`);

  const inbound = smtp;
  const submit = submission;
  return {
    services,
    httpUrl: `http://${host}:${addr.port}`,
    smtpPort: inbound.port,
    submissionPort: submit.port,
    submissionsPort: submit.tlsPort,
    initialRootKey: issued?.secret ?? null,
    async close() {
      // Inbound SMTP first: messages in DATA may still need the store.
      await inbound.close();
      await submit.close();
      await http.close();
      await maintenance.stop();
      await webhookWorker.stop();
      await outboundWorker.stop();
      await services.ingest.close();
      await services.events.stop();
      await store.close();
    },
  };
}
