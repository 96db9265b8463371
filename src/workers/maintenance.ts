// Housekeeping on a timer: purge deleted mailboxes' data, drop expired idempotency records and
// events past their retention, and
// re-verify custom domains every few hours (a domain that loses its records fails after two
// scheduled checks in a row). kick() runs a pass soon, e.g. right after a mailbox delete.
import { iso } from '../core/clock.ts';
import type { Services } from '../services/index.ts';

export interface MaintenanceOptions {
  intervalMs: number;
  reverifyEveryMs: number;
}

export class MaintenanceWorker {
  private readonly services: Services;
  private readonly options: MaintenanceOptions;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private lastReverify = 0;
  private stopped = false;

  constructor(services: Services, options: Partial<MaintenanceOptions> = {}) {
    this.services = services;
    this.options = { intervalMs: options.intervalMs ?? 60_000, reverifyEveryMs: options.reverifyEveryMs ?? 6 * 3600_000 };
  }

  start(): void {
    this.stopped = false;
    this.lastReverify = this.services.clock.now();
    this.schedule(0);
  }

  kick(): void {
    if (!this.stopped && this.timer !== null) this.schedule(0);
  }

  private schedule(delay: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running = this.pass().finally(() => {
        this.running = null;
        if (!this.stopped) this.schedule(this.options.intervalMs);
      });
    }, delay);
    this.timer.unref();
  }

  /** One pass; errors are logged and the next pass tries again. */
  async pass(): Promise<void> {
    const { store, mailboxes, domains, log, clock } = this.services;
    try {
      await mailboxes.runCleanups();
      await store.idempotency.purgeExpired(iso(clock.now()));
      // The event log's replay window: older resumes get sync_required.
      const horizon = iso(clock.now() - this.services.config.realtime.eventRetentionHours * 3600_000);
      while ((await store.events.purgeBefore(horizon)) > 0 && !this.stopped);
      // Webhook delivery attempts and payloads are kept 7 days.
      await this.services.webhooks.purgeExpired();
      // The change log's window for /changes and query-changes (older states get sync_required).
      await this.services.sync.maybePurgeOldChanges();
      // Outbound attachment uploads and upload intents past their expiry.
      await this.services.uploads.purgeExpired();
      if (clock.now() - this.lastReverify >= this.options.reverifyEveryMs) {
        this.lastReverify = clock.now();
        await domains.reverifyAll();
      }
    } catch (err) {
      log.error({ event: 'maintenance.failed', err: (err as Error).message });
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }
}
