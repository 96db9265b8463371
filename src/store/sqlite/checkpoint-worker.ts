// The checkpoint worker thread (see checkpointer.ts): its own connection to the store's database,
// one PASSIVE checkpoint per request, and the outcome reported back.
//
// SQLite fsyncs the database file at the end of a checkpoint only when it copied the WAL up to its
// newest frame, which a checkpoint running next to a writer never does: it stops at the frames it
// saw when it started. Its writes would then stay in the page cache until the finishing checkpoint,
// whose fsync, run while writes wait, had to write them all (50-120 ms every second or so while
// receiving at full speed). So after a regular checkpoint this thread fsyncs the database file
// itself, with no lock held; the finishing one is left only the pages copied since.
import { parentPort, workerData } from 'node:worker_threads';
import { closeSync, fdatasyncSync, openSync } from 'node:fs';
import SqliteDatabase from 'better-sqlite3';

export type CheckpointRequest = 'checkpoint' | 'finish' | 'close';

const path = (workerData as { path: string }).path;
const db = new SqliteDatabase(path);
db.pragma('busy_timeout = 5000');
// Never a checkpoint of its own on close: the store's connection decides when the WAL goes.
db.pragma('wal_autocheckpoint = 0');
const file = openSync(path, 'r');

parentPort!.on('message', (msg: CheckpointRequest) => {
  if (msg === 'close') {
    db.close();
    closeSync(file);
    parentPort!.close();
    return;
  }
  try {
    const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { busy: number; log: number; checkpointed: number }[];
    if (msg === 'checkpoint' && r && r.checkpointed > 0) fdatasyncSync(file);
    parentPort!.postMessage(r ?? null);
  } catch {
    // Busy or interrupted: the next request tries again.
    parentPort!.postMessage(null);
  }
});
