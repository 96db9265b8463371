// The composition root: config -> store -> services -> workers -> protocols.
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { systemClock, type Clock } from '../core/clock.ts';
import type { Config } from '../config/config.ts';
import { openStore, type Store } from '../store/index.ts';
import { createServices, type Services } from '../services/index.ts';
import type { Logger } from '../services/context.ts';
import { MaintenanceWorker } from '../workers/maintenance.ts';
import { buildHttpServer } from '../protocols/http/server.ts';

export interface RunningMailmux {
  services: Services;
  httpUrl: string;
  /** Set when this start created the first team: the root key, shown once. */
  initialRootKey: string | null;
  close(): Promise<void>;
}

export function createLogger(config: Config): Logger {
  return pino({ level: config.logLevel, base: { service: 'mailmux' } });
}

/** Store + services, without listeners: what the CLI's key commands need. */
export async function openServices(config: Config, opts: { log?: Logger; clock?: Clock; pgSchema?: string; maintenance?: { kick(): void } } = {}): Promise<{ store: Store; services: Services }> {
  const clock = opts.clock ?? systemClock;
  const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, clock, ...(opts.pgSchema ? { pgSchema: opts.pgSchema } : {}) });
  const kick = { fn: (): void => undefined };
  const services = createServices(
    { store, config, clock, log: opts.log ?? createLogger(config) },
    { mailboxes: { onDeleted: () => kick.fn() } },
  );
  if (opts.maintenance) kick.fn = () => opts.maintenance?.kick();
  return { store, services };
}

export async function startMailmux(config: Config, opts: { log?: Logger; clock?: Clock; pgSchema?: string } = {}): Promise<RunningMailmux> {
  const relay = { kick: (): void => undefined };
  const { store, services } = await openServices(config, { ...opts, maintenance: relay });
  const issued = await services.teams.bootstrap();
  await services.domains.ensureDefaultDomain();

  const maintenance = new MaintenanceWorker(services);
  relay.kick = () => maintenance.kick();
  maintenance.start();

  const http = await buildHttpServer(services);
  await http.listen({ host: config.listenHost, port: config.httpPort });
  const addr = http.server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  services.log.info({ event: 'http.listening', address: addr.address, port: addr.port });

  return {
    services,
    httpUrl: `http://${host}:${addr.port}`,
    initialRootKey: issued?.secret ?? null,
    async close() {
      await http.close();
      await maintenance.stop();
      await store.close();
    },
  };
}
