// The ingest writer thread's flusher (see ingest-writer.ts): a thread that does nothing but make
// the writer thread's commits durable. The writer thread sends each batch's outcomes here right
// after its COMMIT; this thread flushes the WAL (fdatasync) and hands them to the main thread, which
// may then answer 250. One flush covers every batch that came before it started; the writer thread
// meanwhile writes the next batch, and the main thread, busy speaking SMTP, is not a stop on the way
// (it was: its event loop had to hear of each commit before the flush could start).
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { WalFlusher } from '../store/index.ts';
import type { FlusherReply, WriterDone } from './ingest-writer.ts';

const { databasePath, fromWriter, flushGate } = workerData as { databasePath: string; fromWriter: MessagePort; flushGate: Int32Array | null };
const toMain = parentPort!;
const wal = new WalFlusher(databasePath);

function flush(): void {
  if (flushGate) {
    // Tests: hold the flush while flushGate[0] is 1; fail it while flushGate[1] is 1.
    Atomics.wait(flushGate, 0, 1);
    if (Atomics.load(flushGate, 1) === 1) throw new Error('EIO (the test flush gate)');
  }
  wal.flushSync();
}

// The main thread terminates this thread once the writer thread is gone (IngestWriterThread.close).
fromWriter.on('message', (first: WriterDone) => {
  // Every batch committed before this flush starts is covered by it.
  const batches: WriterDone[] = [first];
  for (let m = receiveMessageOnPort(fromWriter); m; m = receiveMessageOnPort(fromWriter)) batches.push(m.message as WriterDone);
  let error: string | null = null;
  try {
    flush();
  } catch (err) {
    error = `flushing the WAL failed: ${(err as Error).message}`;
  }
  for (const b of batches) {
    // Committed, not durable: nothing of it may be acknowledged (the senders get a 4xx and retry).
    const items = error === null ? b.items : b.items.map(({ id, outcome }) => ({ id, outcome: outcome.ok ? { ok: false as const, error: error! } : outcome }));
    toMain.postMessage({ type: 'durable', items, enqueued: b.enqueued } satisfies FlusherReply);
  }
});
