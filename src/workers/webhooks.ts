// The webhook delivery worker: leases due rows of the outbox (webhook_deliveries), POSTs each to
// its endpoint through the SSRF guard, and records the attempt. Woken when this process commits
// outbox rows, by every event another process commits (services.events.subscribe) and by a timer
// for retries; a lease keeps two processes from delivering the same attempt (FOR UPDATE SKIP LOCKED
// on PostgreSQL).
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { iso } from '../core/clock.ts';
import type { Services } from '../services/index.ts';
import type { WebhookDeliveryRow, WebhookRow } from '../store/index.ts';
import { postOnce, resolveTarget, type Resolver } from '../services/webhook-transport.ts';
import type { AttemptOutcome, AttemptResult } from '../services/webhooks.ts';

export interface WebhookWorkerOptions {
  /** POSTs in flight at once (MAILMUX_WEBHOOK_CONCURRENCY). */
  concurrency: number;
  /** Longest sleep between looks at the outbox: a safety net for missed wake-ups. */
  pollMs: number;
  /** Replaces the system resolver (tests). */
  resolver?: Resolver;
}

/** A lease outlives the request deadline by this much before another process may retry the row. */
const LEASE_MARGIN_MS = 60_000;

export class WebhookWorker {
  private readonly services: Services;
  private readonly options: WebhookWorkerOptions;
  private readonly agent: https.Agent;
  private readonly secureContext: SecureContext | undefined;
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private stopped = true;
  private filling = false;
  private fillScheduled = false;
  private again = false;
  private readonly inflight = new Set<Promise<void>>();
  private idleWaiters: (() => void)[] = [];
  /** Finished POSTs waiting to be recorded; one transaction records a whole batch (group commit). */
  private toRecord: { delivery: WebhookDeliveryRow; outcome: AttemptOutcome; done: (r: AttemptResult | null) => void }[] = [];
  private recording = false;

  constructor(services: Services, options: Partial<WebhookWorkerOptions> = {}) {
    this.services = services;
    const cfg = services.config.webhooks;
    this.options = { concurrency: options.concurrency ?? cfg.concurrency, pollMs: options.pollMs ?? 5000, ...(options.resolver ? { resolver: options.resolver } : {}) };
    this.agent = new https.Agent({ keepAlive: true, maxSockets: this.options.concurrency, timeout: cfg.timeoutSeconds * 1000 });
    // One context with the system CAs plus the extra file, built once: a per-request `ca` list
    // would be re-read and folded into the agent's pool key on every POST.
    this.secureContext = cfg.caFile ? createSecureContext({ ca: [...rootCertificates, readFileSync(cfg.caFile, 'utf8')] }) : undefined;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    // Outbox rows this process adds wake the worker when they commit; an event committed here
    // without any (no webhook wants it: most mail) needs no look at the outbox. Another process's
    // events may have added rows, which that process's worker (if it runs one) also delivers.
    const unsubscribeOutbox = this.services.webhooks.onEnqueued(() => this.kick());
    const unsubscribeEvents = this.services.events.subscribe((_event, local) => {
      if (!local) this.kick();
    });
    this.unsubscribe = () => {
      unsubscribeOutbox();
      unsubscribeEvents();
    };
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.filling || this.recording || this.inflight.size > 0) await Promise.race([...this.inflight, new Promise((r) => setTimeout(r, 10))]);
    this.agent.destroy();
  }

  /** Look at the outbox now. */
  kick(): void {
    if (this.stopped) return;
    if (this.filling) {
      this.again = true;
      return;
    }
    if (this.fillScheduled) return;
    // After this turn's I/O callbacks, so completions that arrive together share one claim.
    this.fillScheduled = true;
    setImmediate(() => {
      this.fillScheduled = false;
      if (this.filling) this.again = true;
      else void this.fill();
    });
  }

  /** Resolves when nothing is in flight and nothing was due at the last look (tests, bench). */
  idle(): Promise<void> {
    if (!this.filling && !this.fillScheduled && this.inflight.size === 0 && !this.again) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private async fill(): Promise<void> {
    this.filling = true;
    const { store, clock, config, log } = this.services;
    // Whether the outbox had nothing due at the last look: only then is the next due time worth a query.
    let drained = false;
    try {
      do {
        this.again = false;
        // Claims come in batches: below half the concurrency, fill up (one claim statement per batch).
        while (!this.stopped && this.inflight.size <= Math.floor(this.options.concurrency / 2)) {
          const now = clock.now();
          const lease = iso(now + config.webhooks.timeoutSeconds * 1000 + LEASE_MARGIN_MS);
          const rows = await store.webhooks.claim(iso(now), lease, this.options.concurrency - this.inflight.size);
          if (rows.length === 0) {
            drained = true;
            break;
          }
          const hooks = new Map((await store.webhooks.getMany([...new Set(rows.map((r) => r.webhook_id))])).map((w) => [w.id, w]));
          for (const row of rows) {
            const p: Promise<void> = this.deliver(row, hooks.get(row.webhook_id)).finally(() => {
              this.inflight.delete(p);
              this.kick();
              this.maybeIdle();
            });
            this.inflight.add(p);
          }
        }
      } while (this.again && !this.stopped);
    } catch (err) {
      log.warn({ event: 'webhook.claim_failed', err: (err as Error).message });
    } finally {
      this.filling = false;
    }
    if (drained || this.inflight.size === 0) await this.scheduleNext();
    this.maybeIdle();
  }

  private maybeIdle(): void {
    if (this.filling || this.fillScheduled || this.inflight.size > 0 || this.again) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Sleeps until the next retry falls due (at most pollMs). */
  private async scheduleNext(): Promise<void> {
    if (this.stopped) return;
    let wait = this.options.pollMs;
    try {
      const next = await this.services.store.webhooks.nextDueAt();
      if (next) wait = Math.min(wait, Math.max(0, Date.parse(next) - this.services.clock.now()));
    } catch {
      // The poll below tries again.
    }
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    // Busy now: completions kick us; no need to spin on a due row we cannot take yet.
    if (this.inflight.size >= this.options.concurrency) wait = this.options.pollMs;
    this.timer = setTimeout(() => this.kick(), Math.max(wait, 5));
    this.timer.unref();
  }

  /** Queues one attempt for the next group commit; resolves once it is recorded. */
  private record(delivery: WebhookDeliveryRow, outcome: AttemptOutcome): Promise<AttemptResult | null> {
    return new Promise((resolve, reject) => {
      this.toRecord.push({ delivery, outcome, done: resolve });
      if (this.recording) return;
      this.recording = true;
      // After this turn's I/O callbacks: the POSTs that finished alongside join the batch.
      setImmediate(() => void this.flush().catch(reject));
    });
  }

  private async flush(): Promise<void> {
    try {
      while (this.toRecord.length > 0) {
        const batch = this.toRecord;
        this.toRecord = [];
        try {
          const results = await this.services.webhooks.recordAttempts(batch);
          batch.forEach((b, i) => b.done(results[i] ?? null));
        } catch (err) {
          // Not recorded: the leases run out and those rows are attempted again.
          this.services.log.error({ event: 'webhook.record_failed', err: (err as Error).message, attempts: batch.length });
          for (const b of batch) b.done(null);
        }
      }
    } finally {
      this.recording = false;
    }
  }

  private async deliver(row: WebhookDeliveryRow, webhook: WebhookRow | undefined): Promise<void> {
    const { webhooks, config, log } = this.services;
    try {
      if (!(await webhooks.shouldDeliver(webhook, row)) || !webhook) return;
      const target = await resolveTarget(webhook.url, config.webhooks.allowPrivate, this.options.resolver);
      const outcome =
        typeof target === 'string'
          ? { status: null, ms: 0, body: null, error: target }
          : await postOnce({
              target,
              headers: webhooks.requestHeaders(webhook, row),
              body: row.payload,
              timeoutMs: config.webhooks.timeoutSeconds * 1000,
              agent: this.agent,
              secureContext: this.secureContext,
            });
      const result = await this.record(row, outcome);
      if (result && result !== 'success') {
        log.info({ event: 'webhook.attempt_failed', webhook_id: row.webhook_id, event_id: row.event_id, attempt: row.attempts, result, status: outcome.status, error: outcome.error });
      }
    } catch (err) {
      // The lease runs out and the row is claimed again.
      log.error({ event: 'webhook.deliver_failed', webhook_id: row.webhook_id, event_id: row.event_id, err: (err as Error).message });
    }
  }
}
