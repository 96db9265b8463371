// The checkpoint worker thread (see checkpointer.ts): its own connection to the store's database,
// one PASSIVE checkpoint per request, and the outcome reported back.
import { parentPort, workerData } from 'node:worker_threads';
import SqliteDatabase from 'better-sqlite3';

const db = new SqliteDatabase((workerData as { path: string }).path);
db.pragma('busy_timeout = 5000');
// Never a checkpoint of its own on close: the store's connection decides when the WAL goes.
db.pragma('wal_autocheckpoint = 0');

parentPort!.on('message', (msg: string) => {
  if (msg === 'close') {
    db.close();
    parentPort!.close();
    return;
  }
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
    parentPort!.postMessage(r ?? null);
  } catch {
    // Busy or interrupted: the next request tries again.
    parentPort!.postMessage(null);
  }
});
