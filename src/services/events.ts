// Events: what webhooks and SSE streams see. An event is written with the data it reports, in the
// same transaction (EventsService.emit inside store.transaction); fan-outs (the webhook outbox) run
// in that transaction too. After commit every process learns of it by tailing the event log by
// `seq`, woken at once in the writing process, by PostgreSQL NOTIFY in the others, and by a slow
// poll as a safety net. Subscribers (SSE streams, the webhook worker) hear each event once, in order.
import { newId } from '../core/ids.ts';
import { iso } from '../core/clock.ts';
import type { EventInsert, EventRow, Repos } from '../store/index.ts';
import type { ServiceContext } from './context.ts';

export const EVENT_TYPES = [
  'message.delivered',
  'message.bounced',
  'message.complained',
  'message.rejected',
  'message.delivery_delayed',
  'message.received',
  'message.received.spam',
  'sendmux.test',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** WebhookEventData: every field present, null when it does not apply. */
export interface EventData {
  bounce_type: 'Permanent' | 'Transient' | 'Undetermined' | null;
  bounce_subtype: string | null;
  complaint_type: string | null;
  complaint_subtype: string | null;
  delay_type: string | null;
  delay_expires_at: string | null;
  reject_reason: string | null;
  is_spam: boolean | null;
  mailbox_id: string | null;
  message_id: string | null;
  message_id_kind: 'provider' | 'rfc5322' | null;
  recipients: string[];
  sender: string | null;
  sendmux_message_id: string | null;
  webhook_id: string | null;
}

export const EMPTY_EVENT_DATA: EventData = {
  bounce_type: null,
  bounce_subtype: null,
  complaint_type: null,
  complaint_subtype: null,
  delay_type: null,
  delay_expires_at: null,
  reject_reason: null,
  is_spam: null,
  mailbox_id: null,
  message_id: null,
  message_id_kind: null,
  recipients: [],
  sender: null,
  sendmux_message_id: null,
  webhook_id: null,
};

export interface EmitInput {
  type: EventType;
  teamId: string;
  mailboxId: string | null;
  /** Fields of WebhookEventData; the rest default to null. */
  data: Partial<EventData>;
  /** The MailboxRealtimeEvent body for SSE (message.received*). */
  realtime?: Record<string, unknown> | null;
  /** sendmux.test: only this webhook receives it. */
  webhookId?: string | null;
  occurredAt?: number;
}

/** Runs inside the emitting transaction (the webhook outbox). */
export type Fanout = (tx: Repos, event: EventRow) => Promise<void>;
/** local: the event was committed by this process (its in-transaction work, such as the webhook outbox rows, was done here). */
export type EventListener = (event: EventRow, local: boolean) => void;

/** The webhook payload (WebhookEventPayload) of a stored event. */
export function webhookPayload(e: EventRow): { id: string; type: string; occurred_at: string; team_public_id: string; data: EventData } {
  return { id: e.id, type: e.type, occurred_at: e.occurred_at, team_public_id: e.team_id, data: JSON.parse(e.data) as EventData };
}

/** Events read per query while tailing. */
const TAIL_BATCH = 500;

export class EventsService {
  private readonly ctx: ServiceContext;
  private readonly fanouts: Fanout[] = [];
  private readonly listeners = new Set<EventListener>();
  private lastSeq = -1;
  private draining = false;
  private again = false;
  /** Committed by this process, not yet dispatched, by seq. */
  private readonly local = new Map<number, EventRow>();
  /** The log may hold rows this process did not write: read it at the next drain. */
  private readNeeded = false;
  private timer: NodeJS.Timeout | null = null;
  private unlisten: (() => Promise<void>) | null = null;
  private started = false;
  /** A notice to the other processes is on its way (notifyOthers); notifyAgain: another is due after it. */
  private notifying = false;
  private notifyAgain = false;

  constructor(ctx: ServiceContext) {
    this.ctx = ctx;
  }

  addFanout(fn: Fanout): void {
    this.fanouts.push(fn);
  }

  /** Appends an event inside `tx`; subscribers hear it after the transaction commits. */
  async emit(tx: Repos, input: EmitInput): Promise<EventRow> {
    return this.appended(tx, await tx.events.append(this.draft(input)));
  }

  /**
   * Appends several events inside `tx`, in this order (ingest: a batch's events, in one statement on
   * PostgreSQL instead of a round trip each); subscribers hear them after the transaction commits.
   */
  async emitMany(tx: Repos, inputs: readonly EmitInput[]): Promise<EventRow[]> {
    if (inputs.length === 0) return [];
    const rows = await tx.events.appendMany(inputs.map((input) => this.draft(input)));
    for (const row of rows) await this.appended(tx, row);
    return rows;
  }

  private draft(input: EmitInput): EventInsert {
    const now = input.occurredAt ?? this.ctx.clock.now();
    return {
      id: newId('evt'),
      team_id: input.teamId,
      mailbox_id: input.mailboxId,
      type: input.type,
      occurred_at: iso(now),
      data: JSON.stringify({ ...EMPTY_EVENT_DATA, ...input.data }),
      realtime: input.realtime ? JSON.stringify(input.realtime) : null,
      webhook_id: input.webhookId ?? null,
    };
  }

  /** An appended event's fan-out (webhook outbox rows, in the same transaction) and its dispatch after commit. */
  private async appended(tx: Repos, row: EventRow): Promise<EventRow> {
    for (const f of this.fanouts) await f(tx, row);
    tx.afterCommit(() => this.committed(row));
    return row;
  }

  /**
   * Events another thread of this process committed (the ingest writer thread), with their
   * in-transaction work done there: dispatched as this process's own.
   */
  adoptCommitted(rows: EventRow[]): void {
    for (const row of rows) this.committed(row);
  }

  /** Hears every committed event once, in `seq` order, from every process. Returns unsubscribe. */
  subscribe(fn: EventListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Begins tailing from the newest event (history is replayed from the store, not here). */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.lastSeq = await this.ctx.store.events.latestSeq();
    this.unlisten = await this.ctx.store.listenEvents(() => this.wake());
    // The safety-net poll: catches a NOTIFY lost across a reconnect (and, on SQLite, events
    // written by another process, such as the CLI).
    this.timer = setInterval(() => this.wake(), this.ctx.config.realtime.eventPollSeconds * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.started = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.unlisten?.();
    this.unlisten = null;
    while (this.draining) await new Promise((r) => setTimeout(r, 5));
  }

  /** The newest seq this process has dispatched (SSE uses it to join replay and live). */
  get dispatchedSeq(): number {
    return this.lastSeq;
  }

  /**
   * After a local commit: tell the other processes, and dispatch here at once. The committed row
   * is at hand: when it is the next seq, it goes out without reading the log back.
   */
  private committed(row: EventRow): void {
    this.notifyOthers();
    if (!this.started) return;
    this.local.set(Number(row.seq), row);
    this.kick();
  }

  /**
   * Tells the other processes that the log has new rows (PostgreSQL NOTIFY; nothing on SQLite).
   * One notice covers every event committed before it is sent, since a woken process reads the log
   * from where it was: the events of one commit (a batch of deliveries) share a notice, sent once
   * their after-commit hooks have all run, and events committed while a notice is on its way share
   * the next one. Each notice is a statement of its own on the server (~2 ms under load), which
   * one per event spent on every delivered message.
   */
  private notifyOthers(): void {
    if (this.notifying) {
      this.notifyAgain = true;
      return;
    }
    this.notifying = true;
    this.notifyAgain = true;
    queueMicrotask(async () => {
      while (this.notifyAgain) {
        this.notifyAgain = false;
        try {
          await this.ctx.store.notifyEvents();
        } catch (err) {
          this.ctx.log.warn({ event: 'events.notify_failed', err: (err as Error).message });
        }
      }
      this.notifying = false;
    });
  }

  /** Another process may have written events (NOTIFY, the safety-net poll): read the log. */
  wake(): void {
    this.readNeeded = true;
    this.kick();
  }

  private kick(): void {
    if (!this.started) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    void this.drain();
  }

  private dispatch(row: EventRow, local: boolean): void {
    this.lastSeq = Number(row.seq);
    for (const l of this.listeners) {
      try {
        l(row, local);
      } catch (err) {
        this.ctx.log.error({ event: 'events.listener_failed', err: (err as Error).message });
      }
    }
  }

  /** Dispatches this process's committed rows that follow on from the last seq dispatched. */
  private dispatchLocal(): void {
    for (let row = this.local.get(this.lastSeq + 1); row; row = this.local.get(this.lastSeq + 1)) {
      this.local.delete(this.lastSeq + 1);
      this.dispatch(row, true);
    }
    for (const seq of this.local.keys()) if (seq <= this.lastSeq) this.local.delete(seq);
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      do {
        this.again = false;
        this.dispatchLocal();
        // Rows left over have a gap before them: another process's events (or, on PostgreSQL, a
        // sequence number a rolled-back transaction took). The log has them all, in order.
        if (this.local.size > 0) this.readNeeded = true;
        if (!this.readNeeded) continue;
        this.readNeeded = false;
        for (;;) {
          const rows = await this.ctx.store.events.after(this.lastSeq, TAIL_BATCH);
          // (A row of ours read back after a gap counts as another process's: its listeners do a little more.)
          for (const row of rows) this.dispatch(row, false);
          if (rows.length < TAIL_BATCH) break;
        }
        this.dispatchLocal();
      } while (this.again && this.started);
    } catch (err) {
      this.readNeeded = true;
      this.ctx.log.warn({ event: 'events.tail_failed', err: (err as Error).message });
    } finally {
      this.draining = false;
    }
  }
}
