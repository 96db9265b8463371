// The SQLite group-commit driver: commits resolve only after a WAL flush that started after them,
// concurrent commits share flushes, the one connection is never used by two transactions at once,
// and the checkpoint worker keeps the WAL from growing without bound.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { openStore, type SideWriter, type StagedBlob, type Store } from '../../src/store/index.ts';
import { Kysely, sql } from 'kysely';
import { Migrator } from 'kysely/migration';
import { GroupCommitSqliteDialect, WalFlusher } from '../../src/store/sqlite/group-commit.ts';
import { Checkpointer } from '../../src/store/sqlite/checkpointer.ts';
import { migrationProvider } from '../../src/store/migrations/index.ts';
import { iso } from '../../src/core/clock.ts';
import { newId } from '../../src/core/ids.ts';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** 1,500 commits of ~60 KB each: ~90 MB (~22,000 pages) through the WAL. */
async function commitManyBlobs(store: Store, commit: (staged: StagedBlob) => Promise<void>): Promise<void> {
  const payload = Buffer.alloc(60_000, 7);
  for (let i = 0; i < 1500; i++) {
    const staged = await store.blobs.stage(Buffer.concat([payload, Buffer.from(String(i))]));
    await commit(staged);
    await store.blobs.release([staged]);
  }
}

/**
 * One hold of the gate by a side writer, as the ingest writer thread does it: its write, counted as
 * a commit, the flush the ingest flusher thread runs for it (that thread's commits do not flush),
 * then the gate back.
 */
async function sideCommit(side: SideWriter, wal: WalFlusher, write: () => unknown): Promise<void> {
  const release = await side.acquire();
  await write();
  side.committed();
  await wal.flush();
  await side.beforeRelease();
  release();
}

/** The WAL frames in use after commitManyBlobs (the file itself keeps its largest size when the WAL starts over). */
function assertWalBounded(dataDir: string): void {
  const other = new SqliteDatabase(join(dataDir, 'mailmux.sqlite'));
  try {
    const [r] = other.pragma('wal_checkpoint(PASSIVE)') as { log: number }[];
    assert.ok(r!.log < 15_000, `${r!.log} frames in the WAL after ~22,000 pages of commits`);
  } finally {
    other.close();
  }
}

test('WAL flushes: a caller waits for a flush that started after its call; callers during a flush share the next one', async () => {
  const runs: { done: () => void }[] = [];
  const flusher = new WalFlusher('/nonexistent/db', () => {
    const d = deferred();
    runs.push({ done: d.resolve });
    return d.promise;
  });
  const settled: string[] = [];
  const a = flusher.flush().then(() => settled.push('a'));
  assert.equal(runs.length, 1, 'the first call starts a flush');
  const b = flusher.flush().then(() => settled.push('b'));
  const c = flusher.flush().then(() => settled.push('c'));
  await new Promise((r) => setImmediate(r));
  assert.equal(runs.length, 1, 'calls during a flush do not start another one yet');

  runs[0]!.done();
  await a;
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(settled, ['a'], 'b and c called while flush 1 ran: flush 1 may not cover them');
  assert.equal(runs.length, 2, 'one more flush serves both');
  const d = flusher.flush().then(() => settled.push('d'));
  runs[1]!.done();
  await Promise.all([b, c]);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(settled.sort(), ['a', 'b', 'c']);
  assert.equal(runs.length, 3, 'd called during flush 2 gets flush 3');
  runs[2]!.done();
  await d;
  assert.equal(runs.length, 3);
});

test('a failed flush fails the commits waiting for it, and the next flush runs anew', async () => {
  let fail = true;
  let count = 0;
  const flusher = new WalFlusher('/nonexistent/db', async () => {
    count++;
    if (fail) throw new Error('EIO');
  });
  await assert.rejects(flusher.flush(), /EIO/);
  fail = false;
  await flusher.flush();
  assert.equal(count, 2);
});

test('concurrent transactions, rollbacks, autocommit writes and reads on one SQLite store all complete, each transaction whole', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mailmux-gc-'));
  const store = await openStore({ databaseUrl: null, dataDir });
  try {
    const now = iso(Date.now());
    const ops: Promise<unknown>[] = [];
    let committed = 0;
    for (let i = 0; i < 300; i++) {
      const kind = i % 4;
      if (kind === 0) {
        ops.push(
          store.transaction(async (tx) => {
            await tx.teams.insert({ id: newId('team'), name: `pair-${i}`, created_at: now });
            await new Promise((r) => setImmediate(r)); // yield inside the transaction
            await tx.teams.insert({ id: newId('team'), name: `pair-${i}`, created_at: now });
          }).then(() => (committed += 2)),
        );
      } else if (kind === 1) {
        ops.push(
          assert.rejects(
            store.transaction(async (tx) => {
              await tx.teams.insert({ id: newId('team'), name: `rolled-${i}`, created_at: now });
              throw new Error('roll back');
            }),
            /roll back/,
          ),
        );
      } else if (kind === 2) {
        ops.push(store.teams.insert({ id: newId('team'), name: `single-${i}`, created_at: now }).then(() => (committed += 1)));
      } else {
        ops.push(store.teams.count());
      }
    }
    await Promise.all(ops);
    assert.equal(await store.teams.count(), committed);
    assert.equal(committed, 75 * 2 + 75);
  } finally {
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("a transaction's hot statements, run directly on its connection, commit and roll back with it, among other transactions and autocommit writes", async () => {
  // Change-log appends are compiled statements (repos/compiled.ts): inside store.transaction they
  // skip Kysely's executor and run on the connection the transaction holds.
  const dataDir = mkdtempSync(join(tmpdir(), 'mailmux-gc-'));
  const store = await openStore({ databaseUrl: null, dataDir });
  const entry = (objectId: string) => ({ mailboxId: 'mbx_direct', type: 'message' as const, objectId, kind: 'created' as const });
  try {
    const kept = new Set<string>();
    const dropped = new Set<string>();
    const ops: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      const kind = i % 4;
      if (kind === 0) {
        ops.push(
          store.transaction(async (tx) => {
            await tx.changes.append(entry(`keep-${i}-a`));
            await new Promise((r) => setImmediate(r)); // others queue for the connection meanwhile
            await tx.changes.appendMany([entry(`keep-${i}-b`), entry(`keep-${i}-c`), entry(`keep-${i}-d`)]);
          }).then(() => ['a', 'b', 'c', 'd'].forEach((x) => kept.add(`keep-${i}-${x}`))),
        );
      } else if (kind === 1) {
        ops.push(
          assert.rejects(
            store.transaction(async (tx) => {
              await tx.changes.appendMany([entry(`drop-${i}-a`), entry(`drop-${i}-b`)]);
              await new Promise((r) => setImmediate(r));
              await tx.changes.append(entry(`drop-${i}-c`));
              throw new Error('roll back');
            }),
            /roll back/,
          ).then(() => ['a', 'b', 'c'].forEach((x) => dropped.add(`drop-${i}-${x}`))),
        );
      } else if (kind === 2) {
        ops.push(store.changes.append(entry(`single-${i}`)).then(() => kept.add(`single-${i}`)));
      } else {
        // A statement that fails inside a transaction fails it, and the transaction rolls back whole.
        ops.push(
          assert.rejects(
            store.transaction(async (tx) => {
              await tx.changes.append(entry(`failed-${i}`));
              await tx.changes.append({ ...entry(`failed-${i}-null`), objectId: null as unknown as string });
            }),
            /NOT NULL/,
          ).then(() => dropped.add(`failed-${i}`)),
        );
      }
    }
    await Promise.all(ops);
    const rows = await store.changes.list({ mailboxId: 'mbx_direct', limit: 10_000 });
    const ids = rows.map((r) => r.object_id);
    assert.equal(ids.length, kept.size, 'every committed append once, no rolled-back one');
    assert.deepEqual(new Set(ids), kept);
    for (const d of dropped) assert.ok(!ids.includes(d), d);
    // The log's ids still rise in commit order: each transaction's rows are together.
    for (let i = 0; i < 200; i += 4) {
      const at = ids.indexOf(`keep-${i}-a`);
      assert.deepEqual(ids.slice(at, at + 4), ['a', 'b', 'c', 'd'].map((x) => `keep-${i}-${x}`));
    }
  } finally {
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('the checkpoint worker keeps the WAL bounded while commits go on', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mailmux-gc-'));
  const store = await openStore({ databaseUrl: null, dataDir });
  try {
    const walPath = join(dataDir, 'mailmux.sqlite-wal');
    // SQLite's own checkpoint is off on the connection, so only the worker (and the finishing
    // step it asks for, from 8,192 pages on) can let the WAL start over.
    await commitManyBlobs(store, (staged) => store.transaction(async (tx) => tx.blobRows.insert([staged])));
    assertWalBounded(dataDir);
    assert.ok(statSync(walPath).size < 70_000_000);
  } finally {
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a migration that fails midway leaves the database as it was: SQLite migrations run in one transaction', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mailmux-gc-'));
  const path = join(dataDir, 'mailmux.sqlite');
  try {
    // A database at 008, as an older Mailmux left it.
    const file = new SqliteDatabase(path);
    file.pragma('journal_mode = WAL');
    const db = new Kysely<Record<string, never>>({ dialect: new GroupCommitSqliteDialect(file, path) });
    const { error } = await new Migrator({ db, provider: migrationProvider('sqlite') }).migrateTo('008-inline-blobs');
    assert.equal(error, undefined);
    await db.destroy();
    // Something in the way of 009's table copy, after its first steps (new counter columns).
    const blocker = new SqliteDatabase(path);
    blocker.exec('CREATE TABLE messages_rekeyed (x)');
    blocker.close();

    await assert.rejects(openStore({ databaseUrl: null, dataDir }));
    const look = new SqliteDatabase(path, { readonly: true });
    try {
      const names = (look.prepare('SELECT name FROM kysely_migration').all() as { name: string }[]).map((r) => r.name);
      assert.ok(!names.includes('009-query-speed'));
      const folderColumns = (look.prepare("SELECT name FROM pragma_table_info('folders')").all() as { name: string }[]).map((r) => r.name);
      assert.ok(folderColumns.includes('next_uid'));
      assert.ok(!folderColumns.includes('total_messages'), 'the first steps of 009 were rolled back');
    } finally {
      look.close();
    }

    const unblock = new SqliteDatabase(path);
    unblock.exec('DROP TABLE messages_rekeyed');
    unblock.close();
    const store = await openStore({ databaseUrl: null, dataDir });
    assert.equal(await store.teams.count(), 0);
    await store.close();
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('two first opens of one empty SQLite database at once both succeed (migrations wait at BEGIN IMMEDIATE)', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mailmux-gc-'));
  try {
    const [a, b] = await Promise.all([openStore({ databaseUrl: null, dataDir }), openStore({ databaseUrl: null, dataDir })]);
    await a.teams.insert({ id: newId('team'), name: 'a', created_at: iso(Date.now()) });
    assert.equal(await b.teams.count(), 1);
    await Promise.all([a.close(), b.close()]);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a side writer (the ingest writer thread\'s connection) and the store\'s own writes take turns; reads go on', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mailmux-gc-'));
  const store = await openStore({ databaseUrl: null, dataDir });
  const side = await openStore({ databaseUrl: null, dataDir, writerThread: true });
  try {
    const gate = store.sideWriter;
    assert.ok(gate);
    const now = iso(Date.now());
    const order: string[] = [];
    // The side writer takes the gate and commits; the store's own writes must wait for the gate.
    const release = await gate.acquire();
    await side.transaction(async (tx) => tx.teams.insert({ id: newId('team'), name: 'side', created_at: now }));
    gate.committed();
    order.push('side committed');
    assert.equal(gate.shouldYield(), false, 'nobody waits yet');
    await new Promise((r) => setTimeout(r, 20));
    const mine = store.transaction(async (tx) => {
      order.push('store transaction began');
      await tx.teams.insert({ id: newId('team'), name: 'mine', created_at: now });
    });
    const autocommit = store.teams.insert({ id: newId('team'), name: 'single', created_at: now }).then(() => order.push('store autocommit'));
    // Reads do not wait for the gate, and see the side writer's commit.
    assert.equal(await store.teams.count(), 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(order, ['side committed'], 'the store writes nothing while the side writer holds the gate');
    assert.equal(gate.shouldYield(), true, 'a write of the store waits: the side writer should give the gate back');
    await gate.beforeRelease();
    order.push('side released');
    release();
    await Promise.all([mine, autocommit]);
    assert.equal(order[1], 'side released');
    assert.deepEqual(order.slice(2).sort(), ['store autocommit', 'store transaction began']);
    assert.equal(await store.teams.count(), 3);
  } finally {
    await side.close();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('afterWrite runs once COMMIT has run, before the transaction resolves; never after a rollback', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mailmux-gc-'));
  const store = await openStore({ databaseUrl: null, dataDir });
  const other = new SqliteDatabase(join(dataDir, 'mailmux.sqlite'), { readonly: true });
  try {
    const now = iso(Date.now());
    const seen: number[] = [];
    let resolved = false;
    await store.transaction(async (tx) => {
      await tx.teams.insert({ id: newId('team'), name: 'a', created_at: now });
      tx.afterWrite(() => {
        assert.equal(resolved, false);
        // Another connection sees the row: the COMMIT has run.
        seen.push((other.prepare('select count(*) as n from teams').get() as { n: number }).n);
      });
      assert.deepEqual(seen, [], 'not inside the transaction');
    });
    resolved = true;
    assert.deepEqual(seen, [1]);
    await assert.rejects(
      store.transaction(async (tx) => {
        await tx.teams.insert({ id: newId('team'), name: 'b', created_at: now });
        tx.afterWrite(() => seen.push(-1));
        throw new Error('roll back');
      }),
      /roll back/,
    );
    await store.transaction(async (tx) => tx.teams.insert({ id: newId('team'), name: 'c', created_at: now }));
    assert.deepEqual(seen, [1], 'the rolled-back transaction\'s hook never ran, nor on the next commit');
  } finally {
    other.close();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('the side writer\'s commits count for checkpoints: the WAL stays bounded when only it writes', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mailmux-gc-'));
  const store = await openStore({ databaseUrl: null, dataDir });
  const side = await openStore({ databaseUrl: null, dataDir, writerThread: true });
  try {
    const wal = new WalFlusher(join(dataDir, 'mailmux.sqlite'));
    await commitManyBlobs(side, (staged) => sideCommit(store.sideWriter!, wal, () => side.transaction(async (tx) => tx.blobRows.insert([staged]))));
    wal.close();
    assertWalBounded(dataDir);
  } finally {
    await side.close();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('when the checkpoint worker is gone, this connection checkpoints for the side writer: the WAL stays bounded', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mailmux-gc-'));
  const path = join(dataDir, 'mailmux.sqlite');
  const file = new SqliteDatabase(path);
  file.pragma('journal_mode = WAL');
  const dialect = new GroupCommitSqliteDialect(file, path);
  const db = new Kysely<Record<string, never>>({ dialect });
  // The side writer's connection, as the ingest writer thread has it: no checkpoints of its own.
  const side = new SqliteDatabase(path);
  side.pragma('wal_autocheckpoint = 0');
  try {
    await sql`CREATE TABLE t (x BLOB)`.execute(db);
    const insert = side.prepare('INSERT INTO t (x) VALUES (?)');
    const payload = Buffer.alloc(60_000, 7);
    const commit = (): Promise<void> => sideCommit(dialect.driver!.side, dialect.driver!.wal, () => insert.run(payload));
    // Enough commits for the checkpoint worker to start; then its thread is killed.
    const checkpointer = (dialect.driver as unknown as { checkpointer: { worker: { terminate(): Promise<number> } | null; unavailable: boolean } }).checkpointer;
    for (let i = 0; i < 200 && !checkpointer.worker; i++) await commit();
    assert.ok(checkpointer.worker, 'the checkpoint worker started');
    await checkpointer.worker.terminate();
    const deadline = Date.now() + 5000;
    while (!checkpointer.unavailable && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(checkpointer.unavailable, true, 'the checkpointer sees its thread gone');
    // ~22,000 pages of side commits.
    for (let i = 0; i < 1500; i++) await commit();
    assertWalBounded(dataDir);
  } finally {
    side.close();
    await db.destroy();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a checkpoint that copied a large WAL is followed by another at once; the finishing step is due only after one that copied little', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mailmux-gc-'));
  const path = join(dataDir, 'mailmux.sqlite');
  const file = new SqliteDatabase(path);
  file.pragma('journal_mode = WAL');
  file.pragma('wal_autocheckpoint = 0');
  const checkpointer = new Checkpointer(path, () => assert.fail('the checkpoint worker failed'));
  try {
    file.exec('CREATE TABLE t (x BLOB)');
    const insert = file.prepare('INSERT INTO t (x) VALUES (?)');
    const payload = Buffer.alloc(60_000, 7);
    // ~9,000 pages in the WAL, more than the finishing step's threshold (8,192 frames).
    for (let i = 0; i < 600; i++) insert.run(payload);
    const replies: { log: number; checkpointed: number }[] = [];
    const worker = (): { on(e: 'message', fn: (r: { log: number; checkpointed: number }) => void): void } | null =>
      (checkpointer as unknown as { worker: { on(e: 'message', fn: (r: { log: number; checkpointed: number }) => void): void } | null }).worker;
    // Commits are counted; a checkpoint is asked for every so often (COMMITS_PER_CHECKPOINT).
    for (let i = 0; i < 1000 && !worker(); i++) checkpointer.committed();
    assert.ok(worker(), 'a checkpoint was asked for');
    worker()!.on('message', (r) => replies.push(r));
    const deadline = Date.now() + 10_000;
    while (!checkpointer.finishPending && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(checkpointer.finishPending, true);
    // The first copied the whole WAL; the next, asked for at once with no new commit, found nothing
    // new: only then is the finishing step due.
    assert.equal(replies.length, 2, JSON.stringify(replies));
    assert.ok(replies[0]!.log > 8192 && replies[0]!.checkpointed === replies[0]!.log, JSON.stringify(replies));
    assert.deepEqual(replies[1], replies[0]);
    assert.equal(checkpointer.takeFinishDue(), true);
    assert.equal(await checkpointer.finish(), true, 'the worker ran the finishing checkpoint');
    // Every frame is in the database file: the next write starts the WAL over.
    insert.run(Buffer.from('x'));
    const [after] = file.pragma('wal_checkpoint(PASSIVE)') as { log: number }[];
    assert.ok(after!.log < 10, `${after!.log} frames after the WAL started over`);
  } finally {
    await checkpointer.close();
    file.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
