// Webhooks (spec tag Webhooks): subscriptions with their signing secret, the outbox fan-out that
// runs inside every event's transaction, the attempt records the delivery worker writes, and the
// delivery list and payloads the API shows (kept 7 days).
//
// Retries: a non-2xx answer, a timeout or a network error is retried after 30 s, 2 min, 10 min,
// 30 min, 1 h, 4 h and 18 h: 8 attempts over about 24 h. After the 8th the attempt is `failed`
// and the webhook is marked failing. A refused destination (SSRF policy) is not retried: the
// attempt is `permanent_failure` and the webhook is marked failing at once. A failing or disabled
// webhook receives no new events (a failing one still receives sendmux.test); re-enabling
// (enabled false -> true) clears `failing`.
import { createHash, createHmac } from 'node:crypto';
import { iso } from '../core/clock.ts';
import { AppError, conflict, notFound, validation, type FieldIssue } from '../core/errors.ts';
import { newId, randomString } from '../core/ids.ts';
import { decodeCursor, pageOf, type Page } from '../core/cursor.ts';
import type { EventRow, Repos, WebhookAttemptListRow, WebhookAttemptRow, WebhookDeliveryInsert, WebhookDeliveryRow, WebhookRow } from '../store/index.ts';
import type { ServiceContext } from './context.ts';
import { EVENT_TYPES, webhookPayload, type EventType, type EventsService } from './events.ts';

/** Waits before attempts 2..8 (index 0 = after attempt 1). */
export const WEBHOOK_RETRY_DELAYS_MS: readonly number[] = [30_000, 120_000, 600_000, 1_800_000, 3_600_000, 4 * 3_600_000, 18 * 3_600_000];
export const WEBHOOK_MAX_ATTEMPTS = WEBHOOK_RETRY_DELAYS_MS.length + 1;
/** Attempts and their payloads are kept this long (spec: 7 days). */
export const WEBHOOK_RETENTION_MS = 7 * 24 * 3_600_000;
/** Mailboxes one webhook may be scoped to. */
export const WEBHOOK_MAILBOX_FILTER_MAX = 1000;
/** Random characters after whsec_. */
const SECRET_LENGTH = 40;
const MIXED = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

export interface WebhookView {
  id: string;
  name: string | null;
  url: string;
  event_types: EventType[];
  filters: { mailbox_ids: string[] };
  enabled: boolean;
  failing: boolean;
  created_at: string;
  updated_at: string;
}

export type WebhookWithSecret = WebhookView & { secret: string };

export interface WebhookInput {
  url?: string;
  event_types?: string[];
  name?: string | null;
  enabled?: boolean;
  filters?: { mailbox_ids: string[] };
}

export type AttemptResult = WebhookAttemptRow['result'];

export interface AttemptView {
  id: string;
  event_id: string;
  event_type: string;
  result: AttemptResult;
  response_status: number | null;
  response_ms: number;
  delivery_attempt: number;
  max_attempts: number;
  next_retry_at: string | null;
  error_message: string | null;
  response_body: string | null;
  payload_available: boolean;
  payload_expires_at: string;
  request_payload_bytes: number;
  request_payload_sha256: string | null;
  created_at: string;
}

/** What the worker learned from one POST. */
export interface AttemptOutcome {
  status: number | null;
  ms: number;
  body: string | null;
  error: string | null;
}

export function webhookView(row: WebhookRow): WebhookView {
  return {
    id: row.id,
    name: row.name,
    url: row.url,
    event_types: JSON.parse(row.event_types) as EventType[],
    filters: { mailbox_ids: JSON.parse(row.mailbox_ids) as string[] },
    enabled: row.enabled === 1,
    failing: row.failing === 1,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

/** `sha256=<hex HMAC-SHA256 of the raw body>` keyed with the whole secret string (whsec_…). */
export function signature(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export function newWebhookSecret(): string {
  return `whsec_${randomString(SECRET_LENGTH, MIXED)}`;
}

/** The semantic checks the spec answers with 422: https URL, known event types, a non-empty list. */
export function checkWebhookInput(body: unknown): void {
  if (!body || typeof body !== 'object') return;
  const b = body as Record<string, unknown>;
  const issues: FieldIssue[] = [];
  if (typeof b.url === 'string') {
    let url: URL | null = null;
    try {
      url = new URL(b.url);
    } catch {
      url = null;
    }
    if (url && url.protocol !== 'https:') issues.push({ field: 'url', code: 'invalid_string', message: 'The webhook URL must use https://' });
  }
  if (Array.isArray(b.event_types)) {
    if (b.event_types.length === 0) issues.push({ field: 'event_types', code: 'too_small', message: 'At least one event type is required' });
    b.event_types.forEach((t, i) => {
      if (typeof t === 'string' && !(EVENT_TYPES as readonly string[]).includes(t)) issues.push({ field: `event_types.${i}`, code: 'invalid_enum_value', message: `Unknown event type ${t}` });
    });
  }
  if (issues.length > 0) throw validation(issues[0]!.message, issues);
}

export class WebhooksService {
  private readonly ctx: ServiceContext;
  private readonly events: EventsService;

  private readonly enqueuedListeners = new Set<() => void>();

  constructor(ctx: ServiceContext, events: EventsService) {
    this.ctx = ctx;
    this.events = events;
  }

  /** Another thread of this process committed outbox rows (the ingest writer thread). */
  notifyEnqueued(): void {
    for (const l of this.enqueuedListeners) l();
  }

  /** Hears each commit of this process that added rows to the outbox (the delivery worker's wake-up). */
  onEnqueued(fn: () => void): () => void {
    this.enqueuedListeners.add(fn);
    return () => this.enqueuedListeners.delete(fn);
  }

  // --- subscriptions

  private async checkMailboxes(tx: Repos, teamId: string, ids: string[]): Promise<string[]> {
    const unique = [...new Set(ids)];
    if (unique.length > WEBHOOK_MAILBOX_FILTER_MAX) throw validation(`At most ${WEBHOOK_MAILBOX_FILTER_MAX} mailboxes per webhook`, [{ field: 'filters.mailbox_ids', code: 'too_big', message: 'Too many mailboxes' }]);
    for (const id of unique) {
      const m = await tx.mailboxes.get(id);
      if (!m || m.team_id !== teamId) throw validation(`Mailbox ${id} is not a mailbox of this team`, [{ field: 'filters.mailbox_ids', code: 'invalid_reference', message: `Unknown mailbox ${id}` }]);
    }
    return unique;
  }

  async create(teamId: string, input: WebhookInput): Promise<WebhookWithSecret> {
    checkWebhookInput(input);
    const now = iso(this.ctx.clock.now());
    const secret = newWebhookSecret();
    const row = await this.ctx.store.transaction(async (tx) => {
      if ((await tx.webhooks.countForTeam(teamId)) >= this.ctx.config.webhooks.maxPerTeam) {
        throw new AppError('limit_exceeded', `A team may hold at most ${this.ctx.config.webhooks.maxPerTeam} webhooks`);
      }
      const mailboxIds = await this.checkMailboxes(tx, teamId, input.filters?.mailbox_ids ?? []);
      const r: WebhookRow = {
        id: newId('whk'),
        team_id: teamId,
        name: input.name ?? null,
        url: input.url ?? '',
        event_types: JSON.stringify([...new Set(input.event_types ?? [])]),
        mailbox_ids: JSON.stringify(mailboxIds),
        enabled: input.enabled === false ? 0 : 1,
        failing: 0,
        secret,
        created_at: now,
        updated_at: now,
      };
      await tx.webhooks.insert(r);
      return r;
    });
    this.ctx.log.info({ event: 'webhook.created', webhook_id: row.id, team_id: teamId });
    return { ...webhookView(row), secret };
  }

  async list(teamId: string, limit: number, cursor: string | undefined): Promise<Page<WebhookView>> {
    const rows = await this.ctx.store.webhooks.listForTeam(teamId, { limit, after: decodeCursor(cursor) });
    const page = pageOf(rows, limit, (r) => ({ v: r.created_at, id: r.id }));
    return { ...page, items: page.items.map(webhookView) };
  }

  private async row(teamId: string, id: string, repos: Repos = this.ctx.store): Promise<WebhookRow> {
    const row = await repos.webhooks.get(id);
    if (!row || row.team_id !== teamId) throw notFound('Webhook');
    return row;
  }

  async get(teamId: string, id: string): Promise<WebhookView> {
    return webhookView(await this.row(teamId, id));
  }

  /** Partial update; `expect` (the caller's If-Match check) runs against the row read in the transaction. */
  async update(teamId: string, id: string, input: WebhookInput, expect?: (current: WebhookView) => void): Promise<WebhookView> {
    checkWebhookInput(input);
    const row = await this.ctx.store.transaction(async (tx) => {
      const current = await this.row(teamId, id, tx);
      expect?.(webhookView(current));
      const patch: Partial<WebhookRow> = { updated_at: iso(this.ctx.clock.now()) };
      if (input.url !== undefined) patch.url = input.url;
      if (input.name !== undefined) patch.name = input.name;
      if (input.event_types !== undefined) patch.event_types = JSON.stringify([...new Set(input.event_types)]);
      if (input.filters !== undefined) patch.mailbox_ids = JSON.stringify(await this.checkMailboxes(tx, teamId, input.filters.mailbox_ids));
      if (input.enabled !== undefined) {
        patch.enabled = input.enabled ? 1 : 0;
        // Toggling false -> true is how an owner says the endpoint is fixed.
        if (input.enabled && current.enabled === 0) patch.failing = 0;
      }
      await tx.webhooks.update(id, patch);
      return { ...current, ...patch };
    });
    return webhookView(row);
  }

  async delete(teamId: string, id: string): Promise<void> {
    await this.ctx.store.transaction(async (tx) => {
      await this.row(teamId, id, tx);
      await tx.webhooks.delete(id);
    });
    this.ctx.log.info({ event: 'webhook.deleted', webhook_id: id, team_id: teamId });
  }

  async rotateSecret(teamId: string, id: string): Promise<WebhookWithSecret> {
    const secret = newWebhookSecret();
    const row = await this.ctx.store.transaction(async (tx) => {
      const current = await this.row(teamId, id, tx);
      const patch = { secret, updated_at: iso(this.ctx.clock.now()) };
      await tx.webhooks.update(id, patch);
      return { ...current, ...patch };
    });
    this.ctx.log.info({ event: 'webhook.secret_rotated', webhook_id: id, team_id: teamId });
    return { ...webhookView(row), secret };
  }

  /** Publishes sendmux.test to this webhook only; 409 unless it subscribes to sendmux.test. */
  async test(teamId: string, id: string): Promise<{ event_id: string }> {
    const event = await this.ctx.store.transaction(async (tx) => {
      const row = await this.row(teamId, id, tx);
      if (!(JSON.parse(row.event_types) as string[]).includes('sendmux.test')) throw conflict('The webhook is not subscribed to sendmux.test; add it to event_types first');
      return this.events.emit(tx, { type: 'sendmux.test', teamId, mailboxId: null, data: { webhook_id: id }, webhookId: id });
    });
    return { event_id: event.id };
  }

  // --- the outbox (runs inside the event's transaction)

  /** The fan-out registered with EventsService: one outbox row per webhook that should hear `event`. */
  async fanout(tx: Repos, event: EventRow): Promise<void> {
    let targets: WebhookRow[];
    if (event.type === 'sendmux.test') {
      // Tests bypass mailbox filters, and reach a failing webhook (to check it is healthy again).
      const w = event.webhook_id ? await tx.webhooks.get(event.webhook_id) : undefined;
      targets = w && w.team_id === event.team_id && w.enabled === 1 ? [w] : [];
    } else {
      targets = (await tx.webhooks.deliverableForTeam(event.team_id)).filter((w) => {
        if (!(JSON.parse(w.event_types) as string[]).includes(event.type)) return false;
        const scope = JSON.parse(w.mailbox_ids) as string[];
        return scope.length === 0 || (event.mailbox_id !== null && scope.includes(event.mailbox_id));
      });
    }
    if (targets.length === 0) return;
    const body = JSON.stringify(webhookPayload(event));
    const sha = createHash('sha256').update(body).digest('hex');
    const now = iso(this.ctx.clock.now());
    const rows: WebhookDeliveryInsert[] = targets.map((w) => ({
      webhook_id: w.id,
      team_id: event.team_id,
      event_id: event.id,
      event_type: event.type,
      payload: body,
      payload_sha256: sha,
      payload_bytes: Buffer.byteLength(body),
      attempts: 0,
      state: 'pending',
      next_attempt_at: now,
      last_attempt_at: null,
      created_at: now,
    }));
    await tx.webhooks.enqueue(rows);
    tx.afterCommit(() => {
      for (const l of this.enqueuedListeners) l();
    });
  }

  // --- what the worker calls

  /** The headers of one attempt, signed with the webhook's current secret. */
  requestHeaders(webhook: WebhookRow, delivery: WebhookDeliveryRow): Record<string, string> {
    return {
      'Content-Type': 'application/json',
      'User-Agent': 'Mailmux-Webhooks/1',
      'X-Sendmux-Signature': signature(webhook.secret, delivery.payload),
      'X-Sendmux-Event-Id': delivery.event_id,
      'X-Sendmux-Event-Type': delivery.event_type,
      'X-Sendmux-Delivery-Attempt': String(delivery.attempts),
    };
  }

  /** Whether a claimed delivery should still go out; if not it is cancelled. */
  async shouldDeliver(webhook: WebhookRow | undefined, delivery: WebhookDeliveryRow): Promise<boolean> {
    if (webhook && webhook.enabled === 1 && (webhook.failing === 0 || delivery.event_type === 'sendmux.test')) return true;
    if (webhook) await this.ctx.store.webhooks.finish(delivery.seq, delivery.attempts, { state: 'cancelled', nextAt: null, at: iso(this.ctx.clock.now()) });
    return false;
  }

  /**
   * Records attempts in one transaction (the worker group-commits them): success, a retry later,
   * or the last failure, which marks the webhook failing. A null result means the attempt no
   * longer counts (webhook deleted, or the lease was taken over).
   */
  async recordAttempts(items: { delivery: WebhookDeliveryRow; outcome: AttemptOutcome }[]): Promise<(AttemptResult | null)[]> {
    const nowMs = this.ctx.clock.now();
    const now = iso(nowMs);
    const planned = items.map(({ delivery, outcome }) => {
      const attempt = delivery.attempts;
      const ok = outcome.status !== null && outcome.status >= 200 && outcome.status < 300;
      const permanent = !ok && (outcome.error === 'destination_not_allowed' || outcome.error === 'invalid_url');
      let result: AttemptResult;
      let nextAt: string | null = null;
      if (ok) result = 'success';
      else if (permanent) result = 'permanent_failure';
      else if (attempt >= WEBHOOK_MAX_ATTEMPTS) result = 'failed';
      else {
        result = 'retrying';
        nextAt = iso(nowMs + (WEBHOOK_RETRY_DELAYS_MS[attempt - 1] ?? WEBHOOK_RETRY_DELAYS_MS[WEBHOOK_RETRY_DELAYS_MS.length - 1]!));
      }
      return { delivery, outcome, attempt, result, nextAt };
    });
    const recorded = await this.ctx.store.transaction(async (tx) => {
      const out: boolean[] = [];
      for (const p of planned) {
        const { delivery, outcome, attempt, result, nextAt } = p;
        const state = result === 'success' ? 'done' : result === 'retrying' ? 'pending' : 'failed';
        if (!(await tx.webhooks.finish(delivery.seq, attempt, { state, nextAt, at: now }))) {
          out.push(false);
          continue;
        }
        await tx.webhooks.insertAttempt({
          id: newId('whda'),
          delivery_seq: delivery.seq,
          webhook_id: delivery.webhook_id,
          event_id: delivery.event_id,
          event_type: delivery.event_type,
          attempt,
          max_attempts: WEBHOOK_MAX_ATTEMPTS,
          result,
          response_status: outcome.status,
          response_ms: outcome.ms,
          response_body: outcome.body,
          error_message: outcome.error,
          next_retry_at: nextAt,
          request_payload_bytes: delivery.payload_bytes,
          request_payload_sha256: delivery.payload_sha256,
          created_at: now,
          expires_at: iso(nowMs + WEBHOOK_RETENTION_MS),
        });
        if (result === 'failed' || result === 'permanent_failure') await tx.webhooks.update(delivery.webhook_id, { failing: 1 });
        out.push(true);
      }
      return out;
    });
    return planned.map((p, i) => {
      if (!recorded[i]) return null;
      if (p.result === 'failed' || p.result === 'permanent_failure') {
        this.ctx.log.warn({ event: 'webhook.failing', webhook_id: p.delivery.webhook_id, event_id: p.delivery.event_id, attempt: p.attempt, error: p.outcome.error, status: p.outcome.status });
      }
      return p.result;
    });
  }

  // --- deliveries and payloads

  private attemptView(row: WebhookAttemptListRow, nowIso: string): AttemptView {
    return {
      id: row.id,
      event_id: row.event_id,
      event_type: row.event_type,
      result: row.result,
      response_status: row.response_status,
      response_ms: row.response_ms,
      delivery_attempt: row.attempt,
      max_attempts: row.max_attempts,
      next_retry_at: row.next_retry_at,
      error_message: row.error_message,
      response_body: row.response_body,
      payload_available: Number(row.has_payload) === 1 && row.expires_at > nowIso,
      payload_expires_at: row.expires_at,
      request_payload_bytes: row.request_payload_bytes,
      request_payload_sha256: row.request_payload_sha256,
      created_at: row.created_at,
    };
  }

  async deliveries(teamId: string, id: string, q: { limit: number; cursor?: string; event_type?: string; result?: string }): Promise<Page<AttemptView>> {
    await this.row(teamId, id);
    const rows = await this.ctx.store.webhooks.listAttempts(id, {
      limit: q.limit,
      after: decodeCursor(q.cursor),
      ...(q.event_type ? { eventType: q.event_type } : {}),
      ...(q.result ? { result: q.result } : {}),
    });
    const page = pageOf(rows, q.limit, (r) => ({ v: r.created_at, id: r.id }));
    const now = iso(this.ctx.clock.now());
    return { ...page, items: page.items.map((r) => this.attemptView(r, now)) };
  }

  async payload(teamId: string, id: string, attemptId: string): Promise<Record<string, unknown>> {
    await this.row(teamId, id);
    const attempt = await this.ctx.store.webhooks.attempt(attemptId);
    if (!attempt || attempt.webhook_id !== id) throw notFound('Delivery');
    const delivery = await this.ctx.store.webhooks.delivery(attempt.delivery_seq);
    if (!delivery || attempt.expires_at <= iso(this.ctx.clock.now())) throw notFound('Delivery payload (expired after 7 days)');
    return {
      id: attempt.id,
      event_id: attempt.event_id,
      event_type: attempt.event_type,
      delivery_attempt: attempt.attempt,
      created_at: attempt.created_at,
      expires_at: attempt.expires_at,
      payload: JSON.parse(delivery.payload) as unknown,
    };
  }

  /** Retention: attempts and payloads older than 7 days. Returns rows dropped. */
  async purgeExpired(): Promise<number> {
    const now = this.ctx.clock.now();
    let total = 0;
    for (;;) {
      const n = await this.ctx.store.webhooks.purge(iso(now), iso(now - WEBHOOK_RETENTION_MS));
      total += n;
      if (n === 0) return total;
    }
  }
}
