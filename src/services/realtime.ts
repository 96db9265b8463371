// Realtime: the streams behind GET /mailbox/events. One subscription to the event tail fans each
// committed message.received* event out to the open streams of its mailbox (a map lookup, not a
// scan). A stream that resumes (Last-Event-ID) is registered first and buffers live events while
// its history is replayed from the event log, so nothing falls between replay and live; an id the
// log no longer holds gets `sync_required`.
import { AppError } from '../core/errors.ts';
import { iso } from '../core/clock.ts';
import type { EventRow } from '../store/index.ts';
import type { ServiceContext } from './context.ts';
import type { EventsService } from './events.ts';
import type { MessagesService } from './mail/messages.ts';
import { realtimeBody } from './mail/realtime-body.ts';

export const REALTIME_EVENT_TYPES = ['message.received', 'message.received.spam'] as const;
export type RealtimeEventType = (typeof REALTIME_EVENT_TYPES)[number];

/** Unsent bytes a slow client may hold before its stream is dropped (it resumes with Last-Event-ID). */
export const STREAM_BUFFER_MAX_BYTES = 4 * 1024 * 1024;
/** Events read per replay query. */
const REPLAY_PAGE = 200;
/**
 * How often open streams' credentials are checked again: a revoked key or a suspended or deleted
 * mailbox loses its streams within this time (one query for all streams of the process).
 */
export const STREAM_RECHECK_MS = 5000;

/** Where a stream's bytes go (the HTTP response). */
export interface StreamSink {
  /** Writes a chunk; returns the bytes still waiting to be sent. */
  write(chunk: string): number;
  close(): void;
}

export interface OpenOptions {
  keyId: string;
  teamId: string;
  mailboxId: string;
  types: ReadonlySet<RealtimeEventType>;
  /** Resume after this event (Last-Event-ID). */
  lastEventId: string | null;
}

export class RealtimeStream {
  readonly options: OpenOptions;
  private sink: StreamSink | null = null;
  private buffering = true;
  private buffer: EventRow[] = [];
  private lastSeq = 0;
  /** Frames are prepared asynchronously (attachment links); this chain keeps them in order. */
  private chain: Promise<void> = Promise.resolve();
  closed = false;
  private readonly owner: RealtimeService;

  constructor(owner: RealtimeService, options: OpenOptions) {
    this.owner = owner;
    this.options = options;
  }

  /** Binds the response and sends the history after Last-Event-ID, then goes live. */
  async attach(sink: StreamSink): Promise<void> {
    this.sink = sink;
    try {
      await this.owner.replay(this);
    } catch (err) {
      this.owner.log('realtime.replay_failed', err);
      this.close();
      return;
    }
    const pending = this.buffer;
    this.buffer = [];
    this.buffering = false;
    for (const row of pending) this.deliver(row);
  }

  /** A live event of this mailbox. */
  offer(row: EventRow): void {
    if (this.closed || !this.options.types.has(row.type as RealtimeEventType)) return;
    if (this.buffering) this.buffer.push(row);
    else this.deliver(row);
  }

  /** Sends one event unless it was already sent (replay and live overlap). */
  deliver(row: EventRow): void {
    if (row.seq <= this.lastSeq || !this.options.types.has(row.type as RealtimeEventType)) return;
    this.lastSeq = row.seq;
    const frame = this.owner.frame(row);
    this.chain = this.chain
      .then(async () => this.write(await frame))
      .catch((err: unknown) => {
        // A frame that cannot be made (the store failed): end the stream rather than skip the
        // event; the client resumes from its Last-Event-ID and gets it again.
        this.owner.log('realtime.frame_failed', err);
        this.close();
      });
  }

  write(chunk: string): void {
    if (this.closed || !this.sink) return;
    if (this.sink.write(chunk) > STREAM_BUFFER_MAX_BYTES) this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.owner.release(this);
    this.sink?.close();
  }
}

export class RealtimeService {
  private readonly ctx: ServiceContext;
  private readonly messages: MessagesService;
  private readonly byMailbox = new Map<string, Set<RealtimeStream>>();
  private readonly perKey = new Map<string, number>();
  /** Frames of recent events, shared by every stream that sends them. */
  private readonly frames = new Map<number, Promise<string>>();

  private recheckTimer: NodeJS.Timeout | null = null;

  constructor(ctx: ServiceContext, events: EventsService, messages: MessagesService) {
    this.ctx = ctx;
    this.messages = messages;
    events.subscribe((row) => this.dispatch(row));
  }

  /** Closes the streams whose credential no longer works (revoked key, mailbox not active). */
  async recheck(): Promise<void> {
    const keys = [...this.perKey.keys()];
    if (keys.length === 0) return;
    const live = await this.ctx.store.keys.liveMailboxKeys(keys);
    for (const set of [...this.byMailbox.values()]) for (const s of [...set]) if (!live.has(s.options.keyId)) s.close();
  }

  private scheduleRecheck(): void {
    if (this.recheckTimer) return;
    this.recheckTimer = setInterval(() => {
      if (this.perKey.size === 0) {
        clearInterval(this.recheckTimer!);
        this.recheckTimer = null;
        return;
      }
      this.recheck().catch((err: unknown) => this.log('realtime.recheck_failed', err));
    }, STREAM_RECHECK_MS);
    this.recheckTimer.unref();
  }

  /** Reserves a stream for a credential: 429 beyond the per-credential cap. */
  open(options: OpenOptions): RealtimeStream {
    const used = this.perKey.get(options.keyId) ?? 0;
    if (used >= this.ctx.config.realtime.maxStreamsPerKey) {
      throw new AppError('rate_limit_exceeded', `Too many realtime connections for this credential (at most ${this.ctx.config.realtime.maxStreamsPerKey})`, { retryAfterSeconds: 5 });
    }
    this.perKey.set(options.keyId, used + 1);
    const stream = new RealtimeStream(this, options);
    let set = this.byMailbox.get(options.mailboxId);
    if (!set) this.byMailbox.set(options.mailboxId, (set = new Set()));
    set.add(stream);
    this.scheduleRecheck();
    return stream;
  }

  release(stream: RealtimeStream): void {
    const { keyId, mailboxId } = stream.options;
    const n = (this.perKey.get(keyId) ?? 1) - 1;
    if (n <= 0) this.perKey.delete(keyId);
    else this.perKey.set(keyId, n);
    const set = this.byMailbox.get(mailboxId);
    set?.delete(stream);
    if (set && set.size === 0) this.byMailbox.delete(mailboxId);
  }

  /** Open streams in this process (for tests and metrics). */
  get openStreams(): number {
    let n = 0;
    for (const set of this.byMailbox.values()) n += set.size;
    return n;
  }

  /** Ends every stream (server shutdown). */
  closeAll(): void {
    for (const set of [...this.byMailbox.values()]) for (const s of [...set]) s.close();
    if (this.recheckTimer) clearInterval(this.recheckTimer);
    this.recheckTimer = null;
  }

  private dispatch(row: EventRow): void {
    if (row.mailbox_id === null || row.realtime === null) return;
    const set = this.byMailbox.get(row.mailbox_id);
    if (!set) return;
    for (const s of set) s.offer(row);
    // Frames are only needed while streams send them.
    setImmediate(() => this.frames.delete(row.seq));
  }

  async replay(stream: RealtimeStream): Promise<void> {
    const { lastEventId, mailboxId } = stream.options;
    if (lastEventId === null) return;
    const from = await this.ctx.store.events.get(lastEventId);
    if (!from || from.mailbox_id !== mailboxId) {
      // Not in the log (expired, or never ours): the client must resynchronise.
      stream.write(this.syncRequiredFrame(stream.options));
      return;
    }
    const types = [...stream.options.types];
    let after = from.seq;
    for (;;) {
      const rows = await this.ctx.store.events.forMailboxAfter(mailboxId, after, types, REPLAY_PAGE);
      for (const row of rows) if (row.realtime !== null) stream.deliver(row);
      if (rows.length < REPLAY_PAGE || stream.closed) break;
      after = rows[rows.length - 1]!.seq;
    }
  }

  /** The SSE frame of an event: id, event name, and the MailboxRealtimeEvent with fresh attachment links. */
  frame(row: EventRow): Promise<string> {
    let f = this.frames.get(row.seq);
    if (!f) {
      f = this.render(row);
      this.frames.set(row.seq, f);
    }
    return f;
  }

  private async render(row: EventRow): Promise<string> {
    const event = JSON.parse(row.realtime!) as { message?: { id?: string; has_attachments?: boolean; body?: unknown } & Record<string, unknown> };
    if (event.message?.body === null && row.mailbox_id && event.message.id) {
      // The event log keeps no copy of the bodies (mail/realtime-body.ts).
      const stored = await this.ctx.store.messages.get(event.message.id);
      event.message.body = realtimeBody(stored?.mailbox_id === row.mailbox_id ? stored : null);
    }
    if (event.message?.has_attachments && row.mailbox_id && event.message.id) {
      const links = await this.messages.attachmentLinks(row.mailbox_id, event.message.id).catch(() => null);
      if (links) event.message.attachments = links;
    }
    return `id: ${row.id}\nevent: ${row.type}\ndata: ${JSON.stringify(event)}\n\n`;
  }

  syncRequiredFrame(o: OpenOptions): string {
    const event = {
      event_type: 'sync_required',
      mailbox_id: o.mailboxId,
      team_public_id: o.teamId,
      occurred_at: iso(this.ctx.clock.now()),
      message_id: null,
      message_id_kind: null,
      sender: null,
      recipients: [],
      is_spam: null,
      message: null,
    };
    return `event: sync_required\ndata: ${JSON.stringify(event)}\n\n`;
  }

  log(event: string, err: unknown): void {
    this.ctx.log.warn({ event, err: (err as Error).message });
  }
}
