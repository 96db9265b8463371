// The ingest writer thread (see ingest-writer.ts): a second connection to the store's SQLite file,
// the same services on it, and IngestService.writeBatch run for each batch the main thread posts.
// It reports twice per batch: `written` once its COMMIT has run (the main thread may let its own
// connection write again), `done` once the commit is durable, with each job's outcome and the
// events it appended.
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../config/config.ts';
import { openStore } from '../store/index.ts';
import { createServices } from '../services/index.ts';
import type { IngestJob } from '../services/mail/ingest.ts';
import type { Logger } from '../services/context.ts';
import type { WriterReply, WriterRequest } from './ingest-writer.ts';

const { config } = workerData as { config: Config };
const port = parentPort!;
const reply = (r: WriterReply): void => port.postMessage(r);
// The main thread's clock, read when it posted the batch (tests run on a clock of their own).
let batchNow = Date.now();
const clock = { now: () => batchNow };
// Log lines go to the main thread's logger.
const log: Logger = {
  info: (obj) => reply({ type: 'log', level: 'info', obj }),
  warn: (obj) => reply({ type: 'log', level: 'warn', obj }),
  error: (obj) => reply({ type: 'log', level: 'error', obj }),
};
const store = await openStore({ databaseUrl: null, dataDir: config.dataDir, clock, writerThread: true });
const services = createServices({ store, config, clock, log });
// The outbox rows this thread's commits added: the main thread wakes its webhook worker.
let enqueued = false;
services.webhooks.onEnqueued(() => {
  enqueued = true;
});

async function write(id: number, jobs: IngestJob[]): Promise<void> {
  for (const job of jobs) {
    // Structured clone hands a Buffer over as a plain Uint8Array.
    const bytes = job.blob.inline as Uint8Array | null;
    if (bytes && !Buffer.isBuffer(bytes)) job.blob.inline = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  let outcomes;
  try {
    outcomes = await services.ingest.writeBatch(jobs, () => reply({ type: 'written', id }));
  } catch (err) {
    outcomes = jobs.map(() => ({ ok: false as const, error: (err as Error).message }));
    reply({ type: 'written', id });
  }
  const e = enqueued;
  enqueued = false;
  reply({ type: 'done', id, outcomes, enqueued: e });
}

port.on('message', (msg: WriterRequest) => {
  if (msg.type === 'close') {
    void store.close().finally(() => port.close());
    return;
  }
  batchNow = msg.now;
  void write(msg.id, msg.jobs);
});
reply({ type: 'ready' });
