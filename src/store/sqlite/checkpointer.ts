// WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside the COMMIT that
// crosses the threshold: it copies the WAL into the database file and fsyncs both, blocking the
// event loop for tens of milliseconds under load. The store's connection turns it off
// (wal_autocheckpoint = 0) and asks this worker thread, which has its own connection, to run
// PASSIVE checkpoints instead: they never block writers or readers.
//
// A writer starts the WAL over only when, at the start of its transaction, every frame has been
// copied; with commits going on, the worker's checkpoint is always a few frames behind. So once the
// worker has copied a large WAL, the connection, right after its next commit and still holding the
// write lock, has the worker run one more checkpoint (only those few frames left to copy, and the
// fsyncs) and waits for it without blocking the event loop; the next write starts the WAL over.
// Writes wait meanwhile, reads do not. The worker starts at the first request, so a store that never
// writes much never starts it.
import { Worker } from 'node:worker_threads';
import type { CheckpointRequest } from './checkpoint-worker.ts';

interface CheckpointResult {
  busy: number;
  log: number;
  checkpointed: number;
}

/**
 * Commits between two checkpoint requests. Each checkpoint ends with an fsync of the database
 * file, which the disk serves next to the WAL flushes that 250s wait for, and copies a page
 * written several times since the last one only once: fewer, larger ones cost less. Receiving at
 * full speed (batches of ~4 messages, ~100 WAL frames a commit), 128 writes ~5 % fewer bytes than
 * 64 and lets the WAL file reach ~110 MB; 256 was faster still but let it reach 220 MB.
 */
const COMMITS_PER_CHECKPOINT = 128;
/**
 * WAL frames (pages, 4 KiB) from which the connection finishes the worker's checkpoint so the WAL
 * starts over: 32 MiB (the WAL is larger by then: the worker's checkpoints run every
 * COMMITS_PER_CHECKPOINT commits). The finishing step holds writes for two fsyncs however large the
 * WAL is (the worker has copied nearly all of it), so it is taken rarely; SQLite's own threshold,
 * 1,000 pages, would take it every second or so.
 */
const RESTART_FRAMES = 8192;
/**
 * A checkpoint that copied at most this many frames ran briefly, so few were written meanwhile:
 * the finishing step after it is short (~5 ms, against 50-120 ms after one that copied ~25,000).
 */
const FINISH_FRAMES = 2048;
/** Checkpoints run back to back before the finishing step, at most (the writer may outrun them). */
const CATCH_UP_ROUNDS = 3;

export class Checkpointer {
  private readonly databasePath: string;
  private worker: Worker | null = null;
  private failed = false;
  private commits = 0;
  private closed = false;
  private inFlight = false;
  private finishDue = false;
  /** What to do with each reply of the worker (or its failure), in the order the requests were sent. */
  private readonly replies: { onReply: (r: CheckpointResult | null) => void; onFail: () => void }[] = [];

  private readonly onFailure: () => void;

  /** onFailure: the worker could not run; the caller turns SQLite's own checkpoints back on. */
  constructor(databasePath: string, onFailure: () => void) {
    this.databasePath = databasePath;
    this.onFailure = onFailure;
  }

  private fail(): void {
    if (this.failed) return;
    this.failed = true;
    this.worker = null;
    this.onFailure();
    for (const r of this.replies.splice(0)) r.onFail();
  }

  /** Called after each commit; every so often asks the worker for a checkpoint. */
  committed(): void {
    if (this.closed || this.failed || this.inFlight || ++this.commits < COMMITS_PER_CHECKPOINT) return;
    this.commits = 0;
    this.checkpoint();
  }

  /** The WAL's size (frames) at the last checkpoint, 0 after a finishing one (the WAL starts over). */
  private lastLog = 0;
  private catchUps = 0;

  /**
   * A regular checkpoint. When it copied a large WAL to its end, the finishing step is due, but
   * it would copy (with writes held) what was written while this one ran: so when this one had
   * much to copy, another runs first, at once, with writes going on, until one copies little.
   */
  private checkpoint(): void {
    try {
      this.request(
        'checkpoint',
        (r) => {
          this.inFlight = false;
          if (!r) return;
          const copied = r.log >= this.lastLog ? r.log - this.lastLog : r.log;
          this.lastLog = r.log;
          if (r.busy !== 0 || r.log < RESTART_FRAMES || r.checkpointed !== r.log) return;
          if (copied > FINISH_FRAMES && this.catchUps < CATCH_UP_ROUNDS && !this.closed && !this.failed) {
            this.catchUps++;
            this.checkpoint();
            return;
          }
          this.catchUps = 0;
          this.finishDue = true;
        },
        () => {},
      );
      this.inFlight = true;
    } catch {
      this.fail();
    }
  }

  private request(kind: CheckpointRequest, onReply: (r: CheckpointResult | null) => void, onFail: () => void): void {
    this.worker ??= this.start();
    this.replies.push({ onReply, onFail });
    this.worker.postMessage(kind);
  }

  /**
   * The finishing checkpoint, by the worker; resolves once it has run (the caller holds the write
   * lock meanwhile). False when the worker cannot run it: the caller then runs it itself.
   */
  finish(): Promise<boolean> {
    if (this.closed || this.failed) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      try {
        this.request(
          'finish',
          () => {
            this.lastLog = 0;
            resolve(true);
          },
          () => resolve(false),
        );
      } catch {
        this.fail();
        resolve(false);
      }
    });
  }

  private start(): Worker {
    const worker = new Worker(new URL('./checkpoint-worker.ts', import.meta.url), { workerData: { path: this.databasePath } });
    worker.unref();
    // Never take the process down for it: fall back to SQLite's checkpoints in the commit.
    worker.on('error', () => this.fail());
    // A thread that ends without an error (terminated, or exited) answers no more requests either.
    worker.on('exit', () => {
      if (!this.closed && this.worker === worker) this.fail();
    });
    worker.on('message', (r: CheckpointResult | null) => this.replies.shift()?.onReply(r));
    return worker;
  }

  /** The worker could not run or has gone: the caller checkpoints by other means (onFailure). */
  get unavailable(): boolean {
    return this.failed;
  }

  /** A finishing checkpoint is due (takeFinishDue has not taken it yet). */
  get finishPending(): boolean {
    return this.finishDue;
  }

  /** True once after the worker copied a large WAL: the connection should checkpoint the rest now. */
  takeFinishDue(): boolean {
    const due = this.finishDue;
    this.finishDue = false;
    return due;
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = null;
    if (!w) return;
    await new Promise<void>((resolve) => {
      w.ref(); // keep the process up until the worker has closed its connection
      w.once('exit', () => resolve());
      w.postMessage('close' satisfies CheckpointRequest);
    });
  }
}
