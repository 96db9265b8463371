// The ingest writer thread (see ingest-writer.ts): a second connection to the store's SQLite file,
// the same services on it, and every job the main thread posts queued with IngestService.enqueue,
// which batches them as the store's own connection would. Per batch it reports twice, both once
// its COMMIT has run: `written` to the main thread (which may hand the write gate on), and each
// job's outcome with the events it appended to the flusher thread (ingest-flusher-worker.ts), which
// flushes the WAL and only then passes them on to the main thread. This connection does not flush
// its commits itself (openStore's writerThread): its thread goes on with the next batch.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type { Config } from '../config/config.ts';
import { openStore } from '../store/index.ts';
import { createServices } from '../services/index.ts';
import type { Logger } from '../services/context.ts';
import type { IngestJob, JobOutcome } from '../services/mail/ingest.ts';
import type { WriterDone, WriterReply, WriterRequest } from './ingest-writer.ts';

const { config, toFlusher } = workerData as { config: Config; toFlusher: MessagePort };
const port = parentPort!;
const reply = (r: WriterReply): void => port.postMessage(r);
// The main thread's clock, read when it posted the newest job (tests run on a clock of their own).
let now = Date.now();
const clock = { now: () => now };
// Log lines go to the main thread's logger.
const log: Logger = {
  info: (obj) => reply({ type: 'log', level: 'info', obj }),
  warn: (obj) => reply({ type: 'log', level: 'warn', obj }),
  error: (obj) => reply({ type: 'log', level: 'error', obj }),
};
const store = await openStore({ databaseUrl: null, dataDir: config.dataDir, clock, writerThread: true, sqliteVfs: config.sqliteVfs });
const services = createServices({ store, config, clock, log });
// The outbox rows this thread's commits added: the main thread wakes its webhook worker.
let enqueued = false;
services.webhooks.onEnqueued(() => {
  enqueued = true;
});
services.ingest.onBatchWritten((jobs) => reply({ type: 'written', jobs }));

// Outcomes are sent as they settle, those of one batch together (they settle in one turn).
let done: { id: number; outcome: JobOutcome }[] = [];
function settled(id: number, outcome: JobOutcome): void {
  if (done.length === 0) {
    queueMicrotask(() => {
      const items = done;
      done = [];
      const e = enqueued;
      enqueued = false;
      toFlusher.postMessage({ items, enqueued: e } satisfies WriterDone);
    });
  }
  done.push({ id, outcome });
}

function write(id: number, job: IngestJob): void {
  // Structured clone hands a Buffer over as a plain Uint8Array.
  const bytes = job.blob.inline as Uint8Array | null;
  if (bytes && !Buffer.isBuffer(bytes)) job.blob.inline = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  services.ingest.enqueue(job).then(
    // The error itself stays here: only its message crosses (it may not be cloneable).
    (outcome) => settled(id, outcome.ok ? outcome : { ok: false, error: outcome.error }),
    (err: unknown) => settled(id, { ok: false, error: (err as Error).message }),
  );
}

port.on('message', (msg: WriterRequest) => {
  if (msg.type === 'close') {
    void store.close().finally(() => {
      toFlusher.close();
      port.close();
    });
    return;
  }
  now = msg.now;
  for (const { id, job } of msg.jobs) write(id, job);
});
reply({ type: 'ready' });
