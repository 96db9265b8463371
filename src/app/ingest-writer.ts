// The ingest writer thread, main-thread side. On SQLite every statement runs on the thread that
// calls it, and writing a delivered message (about twenty statements and the COMMIT's WAL writes)
// costs the event loop about as much as everything else inbound SMTP does: receiving, checking,
// authenticating and parsing. So ingest's batches are written by a worker thread with its own
// connection to the same file (ingest-writer-worker.ts runs IngestService.writeBatch there), and
// the event loop only posts each batch and hears how it went.
//
// - One batch at a time is being written: the next is posted once the previous one's COMMIT has
//   run, while its WAL flush is still under way (the same overlap as the store's own connection).
// - While a batch is written, the store's own connection starts no write (Store.sideWrite, its
//   write gate): two writers of one process never meet in SQLite's busy handler, which would sleep
//   on the event loop.
// - A delivery is acknowledged only from `done`, sent after the worker's commit is durable.
// - Events the batch appended are dispatched here, as if this thread had committed them.
// - If the thread fails, the batches in flight fail (their senders get a 4xx and retry) and ingest
//   writes on the store's connection again.
import { Worker } from 'node:worker_threads';
import type { Services } from '../services/index.ts';
import type { IngestJob, IngestWriter, JobOutcome } from '../services/mail/ingest.ts';
import type { EventRow } from '../store/index.ts';

export type WriterRequest = { type: 'batch'; id: number; now: number; jobs: IngestJob[] } | { type: 'close' };
export type WriterReply =
  | { type: 'ready' }
  | { type: 'written'; id: number }
  | { type: 'done'; id: number; outcomes: JobOutcome[]; enqueued: boolean }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; obj: object };

interface InFlight {
  written: () => void;
  done: (outcomes: JobOutcome[]) => void;
  fail: (err: Error) => void;
}

export class IngestWriterThread implements IngestWriter {
  private readonly services: Services;
  private worker: Promise<Worker> | null = null;
  private failed = false;
  private seq = 0;
  private readonly inFlight = new Map<number, InFlight>();
  /** Batches the thread has written and made durable. */
  batchesWritten = 0;

  constructor(services: Services) {
    this.services = services;
  }

  /** Starts the thread at the first batch: a server that never receives mail never starts it. */
  private start(): Promise<Worker> {
    this.worker ??= new Promise<Worker>((resolve, reject) => {
      const worker = new Worker(new URL('./ingest-writer-worker.ts', import.meta.url), { workerData: { config: this.services.config } });
      // The open SMTP sessions waiting for their batches keep the process up, not the thread.
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
        reject(new Error(`ingest writer thread exited (${code})`));
        if (!this.closing) this.fail(new Error(`ingest writer thread exited (${code})`));
      });
    });
    return this.worker;
  }

  private reply(r: WriterReply): void {
    if (r.type === 'log') {
      this.services.log[r.level](r.obj);
      return;
    }
    if (r.type === 'ready') return;
    const f = this.inFlight.get(r.id);
    if (!f) return;
    if (r.type === 'written') {
      f.written();
      return;
    }
    this.inFlight.delete(r.id);
    // Committed and durable in this process: dispatch its events as this thread's own.
    const events: EventRow[] = [];
    for (const o of r.outcomes) if (o.ok) events.push(...o.written.events);
    this.services.events.adoptCommitted(events);
    this.batchesWritten++;
    if (r.enqueued) this.services.webhooks.notifyEnqueued();
    f.done(r.outcomes);
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.services.log.error({ event: 'ingest.writer_thread_failed', err: err.message });
    // From now on the store's own connection writes.
    this.services.ingest.useWriter(null);
    for (const f of this.inFlight.values()) f.fail(err);
    this.inFlight.clear();
  }

  async write(jobs: IngestJob[], written: () => void): Promise<JobOutcome[]> {
    const worker = await this.start();
    const sideWrite = this.services.store.sideWrite;
    if (!sideWrite) throw new Error('the ingest writer thread needs SQLite');
    const id = ++this.seq;
    let outcomes!: Promise<JobOutcome[]>;
    await sideWrite(
      () =>
        new Promise<void>((writtenResolve, writtenReject) => {
          if (this.failed) throw new Error('ingest writer thread failed');
          outcomes = new Promise<JobOutcome[]>((resolve, reject) => {
            this.inFlight.set(id, {
              written: writtenResolve,
              done: resolve,
              fail: (err) => {
                writtenReject(err);
                reject(err);
              },
            });
          });
          // Awaited below, unless the batch fails before its COMMIT (then sideWrite throws).
          outcomes.catch(() => undefined);
          const request: WriterRequest = { type: 'batch', id, now: this.services.clock.now(), jobs };
          worker.postMessage(request);
        }),
    );
    written();
    return outcomes;
  }

  private closing = false;

  /** The thread, once started (tests make it fail). */
  get thread(): Promise<Worker> | null {
    return this.worker;
  }

  /** After the last delivery: waits for the batches in flight, then closes the thread's connection. */
  async close(): Promise<void> {
    this.closing = true;
    const started = this.worker;
    if (!started) return;
    const worker = await started.catch(() => null);
    while (this.inFlight.size > 0 && !this.failed) await new Promise((r) => setTimeout(r, 5));
    if (!worker) return;
    await new Promise<void>((resolve) => {
      worker.once('exit', () => resolve());
      worker.postMessage({ type: 'close' } satisfies WriterRequest);
    });
  }
}
