// The outbound delivery worker: leases due queue rows (durable in the database, so a restart
// loses nothing), groups them by submission and runs one delivery attempt per group, with a
// process-wide concurrency limit and a per-domain (or per-provider) limit. Woken at once by sends
// in this process; a short poll picks up other processes' sends and retries that fall due.
import { iso } from '../core/clock.ts';
import { randomString } from '../core/ids.ts';
import type { Services } from '../services/index.ts';
import { DeliveryService } from '../services/send/delivery.ts';
import type { OutboundRecipientRow } from '../store/index.ts';
import { Semaphores } from '../core/semaphores.ts';

/** Safety-net poll (other processes' sends on PostgreSQL, leases of crashed workers). */
export const OUTBOUND_POLL_MS = 1000;
/** How long stop() waits for deliveries in flight. */
export const STOP_WAIT_MS = 5000;

export class OutboundWorker {
  private readonly services: Services;
  private readonly delivery: DeliveryService;
  private readonly owner = `w_${randomString(12)}`;
  private readonly inflight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = true;
  private pumping = false;
  private again = false;
  private unsubscribe: (() => void) | null = null;

  constructor(services: Services) {
    this.services = services;
    const domains = new Semaphores(services.config.outbound.domainConcurrency);
    this.delivery = new DeliveryService(services, {
      events: services.events,
      ingest: services.ingest,
      filters: services.filters,
      providers: services.providers,
      slot: (key, fn) => domains.run(key, fn),
    });
  }

  async start(): Promise<void> {
    this.stopped = false;
    if (this.services.store.dialect === 'sqlite') {
      const released = await this.services.store.outbound.releaseLeases(iso(this.services.clock.now()));
      if (released > 0) this.services.log.info({ event: 'outbound.leases_released', rows: released });
    }
    this.unsubscribe = this.services.outbound.onQueued(() => this.kick());
    this.kick();
  }

  kick(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    void this.pump();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.kick(), Math.max(0, ms));
    this.timer.unref();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    const { store, clock, config, log } = this.services;
    try {
      do {
        this.again = false;
        const room = config.outbound.concurrency - this.inflight.size;
        // Claim in batches (once half the slots are free): one claim transaction per few messages.
        if (room <= 0 || (this.inflight.size > 0 && room < config.outbound.concurrency / 2)) break;
        const now = clock.now();
        const rows = await store.outbound.claim(this.owner, iso(now), iso(now + config.outbound.leaseSeconds * 1000), room);
        if (rows.length === 0) break;
        const groups = new Map<string, OutboundRecipientRow[]>();
        for (const row of rows) groups.set(row.submission_id, [...(groups.get(row.submission_id) ?? []), row]);
        for (const [submissionId, group] of groups) {
          const p = this.run(submissionId, group).finally(() => {
            this.inflight.delete(p);
            this.kick();
          });
          this.inflight.add(p);
        }
        this.again = true;
      } while (this.again && !this.stopped);
    } catch (err) {
      log.error({ event: 'outbound.claim_failed', err: (err as Error).message });
    } finally {
      this.pumping = false;
    }
    if (this.stopped) return;
    // Sleep until the next row falls due, at most a poll interval.
    let wait = OUTBOUND_POLL_MS;
    try {
      const next = await store.outbound.nextDueAt();
      if (next) wait = Math.min(wait, Math.max(10, Date.parse(next) - clock.now()));
    } catch {
      // poll again soon
    }
    this.schedule(wait);
  }

  private async run(submissionId: string, rows: OutboundRecipientRow[]): Promise<void> {
    const { store, clock, config } = this.services;
    // Keep the lease while the attempt runs, however long the remote servers take.
    const leaseMs = config.outbound.leaseSeconds * 1000;
    const heartbeat = setInterval(() => {
      store.outbound.extend(this.owner, rows.map((r) => r.seq), iso(clock.now() + leaseMs)).catch(() => undefined);
    }, Math.max(250, leaseMs / 3));
    heartbeat.unref();
    try {
      const submission = await this.services.store.submissions.get(submissionId);
      if (!submission) return;
      await this.delivery.attempt(submission, rows);
    } catch (err) {
      this.services.log.error({ event: 'outbound.attempt_failed', submission_id: submissionId, err: (err as Error).message });
    } finally {
      clearInterval(heartbeat);
    }
  }

  /** Stops claiming and waits (a while) for the attempts in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    // A remote server may take its full timeout; do not hold a shutdown for it. An attempt cut
    // short keeps its lease and is retried (at the next start on SQLite, at lease end otherwise).
    const deadline = Date.now() + STOP_WAIT_MS;
    while (this.inflight.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.inflight]), new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())]);
    }
  }

  /** Attempts in flight (tests and benchmarks wait on an idle queue). */
  get busy(): number {
    return this.inflight.size;
  }
}
