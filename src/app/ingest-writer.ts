// The ingest writer thread, main-thread side. On SQLite every statement runs on the thread that
// calls it, and writing a delivered message (about twenty statements and the COMMIT's WAL writes)
// costs the event loop about as much as everything else inbound SMTP does: receiving, checking,
// authenticating and parsing. So deliveries are written by a worker thread with its own
// connection to the same file (ingest-writer-worker.ts), and the event loop only posts each job and
// hears how it went.
//
// - Jobs are posted as they come; the thread batches them itself, as the store's own connection
//   does (one transaction for what arrived meanwhile, the next written while the last is flushed).
// - The write gate (Store.sideWriter): while the thread has jobs to write, this side holds the
//   gate for it, so the store's own connection starts no write meanwhile and two writers of one
//   process never meet in SQLite's busy handler, which would sleep on the event loop. When a write
//   of the store's connection waits, or a finishing checkpoint is due, no more jobs are posted
//   until the thread has written those it has; then the gate is given back, and taken again (in
//   turn) for the jobs that came meanwhile.
// - The thread's commits resolve at COMMIT. It sends each batch's outcomes to a second, otherwise
//   idle thread, the flusher (ingest-flusher-worker.ts), which flushes the WAL (fdatasync; one
//   flush for every batch that came before it started) and hands them here; only then does this
//   side settle the deliveries and dispatch the events the thread appended, as if this thread had
//   committed them. The writer thread goes on with its next batch meanwhile; an fsync it started
//   itself would be heard only after that batch. This side used to run the flush, which had to wait
//   for its busy event loop to hear of each commit first (p50 1.1 ms under load).
// - If either thread fails, both are stopped, the deliveries in flight fail (their senders get a
//   4xx and retry), and ingest writes on the store's connection again.
import { MessageChannel, Worker } from 'node:worker_threads';
import type { Services } from '../services/index.ts';
import type { IngestJob, IngestWriter, JobOutcome } from '../services/mail/ingest.ts';
import { sqliteDatabasePath, type EventRow, type SideWriter } from '../store/index.ts';

export type WriterRequest = { type: 'jobs'; now: number; jobs: { id: number; job: IngestJob }[] } | { type: 'close' };
export type WriterReply =
  | { type: 'ready' }
  | { type: 'written'; jobs: number }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; obj: object };

/** A batch's outcomes, from the writer thread to the flusher. */
export interface WriterDone {
  items: { id: number; outcome: JobOutcome }[];
  /** Its commit added webhook outbox rows. */
  enqueued: boolean;
}
/** The same, once flushed, from the flusher to this side. */
export type FlusherReply = { type: 'durable' } & WriterDone;

/**
 * Jobs as they are posted: each message's bytes in a buffer of their own, handed over rather than
 * copied. Posting a view copies its whole ArrayBuffer, and a received message is a view into the
 * 64 KiB chunk the socket read it into: six times its size for a 10 KB message, copied, then sent.
 */
function forPosting(jobs: { id: number; job: IngestJob }[]): { posted: { id: number; job: IngestJob }[]; transfer: ArrayBuffer[] } {
  const transfer: ArrayBuffer[] = [];
  const posted = jobs.map(({ id, job }) => {
    const inline = job.blob.inline;
    if (!inline) return { id, job };
    const own = new Uint8Array(inline);
    transfer.push(own.buffer);
    // The thread makes a Buffer of it again (ingest-writer-worker.ts).
    return { id, job: { ...job, blob: { ...job.blob, inline: own as Buffer } } };
  });
  return { posted, transfer };
}

export class IngestWriterThread implements IngestWriter {
  private readonly services: Services;
  private readonly side: SideWriter;
  private worker: Promise<Worker> | null = null;
  private flusher: Worker | null = null;
  private failed = false;
  private closing = false;
  private seq = 0;
  /** Submitted, not yet settled. */
  private readonly pending = new Map<number, (o: JobOutcome) => void>();
  /** Submitted, not yet posted (waiting for the gate). */
  private waiting: { id: number; job: IngestJob }[] = [];
  /** Posted, not yet reported written. */
  private posted = 0;
  /** Gives the write gate back; set while this side holds it. */
  private release: (() => void) | null = null;
  private acquiring = false;
  private releasing = false;
  private postedThisHold = false;
  /** Batches the thread has written and made durable. */
  batchesWritten = 0;
  /**
   * Tests only, set before the first job: while flushGate[0] is 1 the flusher waits before each
   * flush; while flushGate[1] is 1 its flushes fail.
   */
  flushGate: Int32Array | null = null;

  constructor(services: Services, side: SideWriter) {
    this.services = services;
    this.side = side;
  }

  /** The thread, once started (tests make it fail). */
  get thread(): Promise<Worker> | null {
    return this.worker;
  }

  /** The flusher thread, once started (tests make it fail). */
  get flusherThread(): Worker | null {
    return this.flusher;
  }

  /** Starts the thread at the first job: a server that never receives mail never starts it. */
  private start(): Promise<Worker> {
    this.worker ??= new Promise<Worker>((resolve, reject) => {
      const channel = new MessageChannel();
      const flusher = new Worker(new URL('./ingest-flusher-worker.ts', import.meta.url), {
        workerData: { databasePath: sqliteDatabasePath(this.services.config.dataDir), fromWriter: channel.port2, flushGate: this.flushGate },
        transferList: [channel.port2],
      });
      this.flusher = flusher;
      flusher.unref();
      flusher.on('message', (r: FlusherReply) => this.durable(r.items, r.enqueued));
      flusher.on('error', (err) => this.fail(err));
      flusher.on('exit', (code) => {
        if (!this.closing) this.fail(new Error(`ingest flusher thread exited (${code})`));
      });
      const worker = new Worker(new URL('./ingest-writer-worker.ts', import.meta.url), {
        workerData: { config: this.services.config, toFlusher: channel.port1 },
        transferList: [channel.port1],
      });
      // The open SMTP sessions waiting for their jobs keep the process up, not the threads.
      worker.unref();
      worker.on('message', (r: WriterReply) => {
        if (r.type === 'ready') resolve(worker);
        else this.reply(r);
      });
      worker.on('error', (err) => {
        reject(err);
        this.fail(err);
      });
      worker.on('exit', (code) => {
        const err = new Error(`ingest writer thread exited (${code})`);
        reject(err);
        if (!this.closing) this.fail(err);
      });
    });
    return this.worker;
  }

  submit(job: IngestJob): Promise<JobOutcome> {
    if (this.failed) return Promise.resolve({ ok: false, error: 'ingest writer thread failed' });
    const id = ++this.seq;
    const outcome = new Promise<JobOutcome>((settle) => this.pending.set(id, settle));
    this.waiting.push({ id, job });
    this.pump();
    return outcome;
  }

  /** Posts what waits while this side holds the gate and need not give it back; takes the gate when needed. */
  private pump(): void {
    if (this.failed || this.waiting.length === 0) return;
    if (this.release) {
      if (this.releasing) return;
      // Each hold of the gate posts at least once (so a steady stream of other writes cannot keep
      // received mail waiting); after that, a write waiting for the gate goes first.
      if (this.postedThisHold && this.side.shouldYield()) {
        if (this.posted === 0) void this.giveBack();
        return;
      }
      this.postedThisHold = true;
      const jobs = this.waiting;
      this.waiting = [];
      this.posted += jobs.length;
      const { posted, transfer } = forPosting(jobs);
      void this.start().then(
        (worker) => worker.postMessage({ type: 'jobs', now: this.services.clock.now(), jobs: posted } satisfies WriterRequest, transfer),
        (err: Error) => this.fail(err),
      );
      return;
    }
    if (this.acquiring) return;
    this.acquiring = true;
    void this.side.acquire().then((release) => {
      this.acquiring = false;
      this.release = release;
      this.postedThisHold = false;
      if (this.waiting.length === 0 || this.failed) void this.giveBack();
      else this.pump();
    });
  }

  /** Nothing posted is left to write: the gate goes back (after a finishing checkpoint, when due). */
  private async giveBack(): Promise<void> {
    const release = this.release;
    if (!release || this.releasing) return;
    this.releasing = true;
    try {
      await this.side.beforeRelease();
    } finally {
      this.releasing = false;
      this.release = null;
      release();
    }
    // Jobs that came meanwhile: take the gate again, in turn.
    this.pump();
  }

  private reply(r: WriterReply): void {
    switch (r.type) {
      case 'log':
        this.services.log[r.level](r.obj);
        return;
      case 'written':
        this.posted -= r.jobs;
        this.side.committed();
        if (this.posted > 0) return;
        // The thread has written all it was given: go on with what came meanwhile, or give the gate back.
        if (this.waiting.length > 0 && !this.side.shouldYield()) this.pump();
        else void this.giveBack();
        return;
      case 'ready':
        return;
    }
  }

  /** A batch the thread committed, flushed by the flusher: dispatch its events as this thread's own, settle its deliveries. */
  private durable(items: { id: number; outcome: JobOutcome }[], enqueued: boolean): void {
    const events: EventRow[] = [];
    for (const { outcome } of items) if (outcome.ok) events.push(...outcome.written.events);
    this.services.events.adoptCommitted(events);
    if (enqueued) this.services.webhooks.notifyEnqueued();
    this.batchesWritten++;
    for (const { id, outcome } of items) {
      const settle = this.pending.get(id);
      this.pending.delete(id);
      settle?.(outcome);
    }
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.services.log.error({ event: 'ingest.writer_thread_failed', err: err.message });
    // Neither thread is any use without the other: a commit nobody flushes is never acknowledged.
    void this.flusher?.terminate();
    void this.worker?.then((w) => w.terminate()).catch(() => undefined);
    // From now on the store's own connection writes.
    if (this.services.ingest.writerInUse === this) this.services.ingest.useWriter(null);
    for (const settle of this.pending.values()) settle({ ok: false, error: `ingest writer thread failed: ${err.message}` });
    this.pending.clear();
    this.waiting = [];
    this.posted = 0;
    const release = this.release;
    this.release = null;
    release?.();
  }

  /** After the last delivery: waits for the jobs in flight, then closes the thread's connection. */
  async close(): Promise<void> {
    this.closing = true;
    const started = this.worker;
    if (!started) return;
    const worker = await started.catch(() => null);
    while (this.pending.size > 0 && !this.failed) await new Promise((r) => setTimeout(r, 5));
    if (worker) {
      await new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        worker.postMessage({ type: 'close' } satisfies WriterRequest);
      });
    }
    // Every delivery is settled, so the flusher has nothing left to flush.
    await this.flusher?.terminate();
  }
}
