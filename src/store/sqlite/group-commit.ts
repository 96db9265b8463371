// SQLite with group commit. better-sqlite3 runs every statement on the calling thread, so with
// `synchronous = FULL` each COMMIT blocks the event loop for a WAL fsync (6-12 ms on this kind of
// disk under load): nothing else runs meanwhile, and the next batch of deliveries is only what
// arrived during that stall.
//
// Here the connection runs with `synchronous = NORMAL` (in WAL mode a commit writes its frames to
// the WAL without an fsync; the database stays consistent after a power loss, only the last commits
// could be missing) and this driver restores FULL's promise itself: a commit - or a write statement
// outside a transaction - resolves only after an fdatasync of the WAL file that started after it,
// run on libuv's thread pool. Commits that land while an fsync is running share the next one. The
// connection is handed to the next transaction as soon as COMMIT has run, so the next batch is
// written while the previous one is being flushed. Checkpoints fsync the WAL before they copy it
// (NORMAL keeps that), so a checkpointed commit is durable too.
//
// Visibility: another reader of this connection may see a commit a few milliseconds before it is
// durable; nothing acknowledges it (SMTP 250, HTTP response, events - those run after the commit
// resolves) before the flush.
import { closeSync, fdatasync, fdatasyncSync, open, openSync } from 'node:fs';
import { Checkpointer } from './checkpointer.ts';
import type SqliteDatabase from 'better-sqlite3';
import {
  CompiledQuery,
  SqliteAdapter,
  SqliteDialect,
  type DatabaseConnection,
  type Driver,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';

/** Flushes the WAL file; calls made while a flush runs share the next one. */
export class WalFlusher {
  private readonly walPath: string;
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;

  private readonly sync: () => Promise<void>;

  /** sync: what makes the WAL durable (tests pass their own to watch the coalescing). */
  constructor(databasePath: string, sync?: () => Promise<void>) {
    this.walPath = `${databasePath}-wal`;
    this.sync = sync ?? (() => this.fdatasync());
  }

  /** Resolves once everything written to the WAL before this call is on disk. */
  flush(): Promise<void> {
    // A flush that has not started yet covers this caller's writes.
    if (this.queued) return this.queued;
    if (!this.running) return this.start();
    // The running flush may have started before our write: wait for it, then flush again.
    this.queued = this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = null;
        return this.start();
      });
    return this.queued;
  }

  private start(): Promise<void> {
    const run = (this.running = this.sync().finally(() => {
      if (this.running === run) this.running = null;
    }));
    return run;
  }

  /**
   * The WAL stays open from the first flush on (one thread-pool job a flush, not open, sync and
   * close). It is the same file for as long as our connection is open: SQLite removes the WAL only
   * when the last connection to the database closes, and starts it over in place.
   */
  private fd: number | null = null;
  private closed = false;

  private async fdatasync(): Promise<void> {
    if (this.closed) return;
    if (this.fd === null) {
      try {
        const fd = await new Promise<number>((resolve, reject) => open(this.walPath, 'r', (err, fd) => (err ? reject(err) : resolve(fd))));
        // flushSync may have opened it meanwhile.
        if (this.fd === null) this.fd = fd;
        else closeSync(fd);
      } catch (err) {
        // No WAL file yet: nothing has been written to it, so nothing needs to reach the disk.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
    }
    const fd = this.fd;
    await new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
  }

  /**
   * The same flush, now, blocking this thread: for a thread that has nothing else to do meanwhile
   * (the ingest flusher thread). Throws when it fails.
   */
  flushSync(): void {
    if (this.closed) return;
    if (this.fd === null) {
      try {
        this.fd = openSync(this.walPath, 'r');
      } catch (err) {
        // No WAL file yet: nothing has been written to it, so nothing needs to reach the disk.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
    }
    fdatasyncSync(this.fd);
  }

  /** After the last flush (the connection is closing). */
  close(): void {
    this.closed = true;
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/** FIFO lock: one transaction (or statement) at a time on the single connection. */
class Lock {
  private tail: Promise<void> = Promise.resolve();
  acquire(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => (release = r));
    const granted = this.tail.then(() => release);
    this.tail = this.tail.then(() => next);
    return granted;
  }
}

/**
 * FIFO lock over writing to the database file from this process: a write transaction (or an
 * autocommit write) of the store's connection, or a batch written by another connection of this
 * process (the ingest writer thread, `GroupCommitDriver.side`). SQLite lets one writer in at a
 * time; a second connection that tries meanwhile would wait in SQLite's busy handler, which sleeps
 * on the event loop. Here it waits on a promise instead. tryAcquire is the uncontended fast path.
 */
class WriteGate {
  private held = false;
  private readonly waiters: (() => void)[] = [];
  get waiting(): number {
    return this.waiters.length;
  }
  tryAcquire(): (() => void) | null {
    if (this.held) return null;
    this.held = true;
    return this.releaser();
  }
  acquire(): Promise<() => void> {
    const now = this.tryAcquire();
    if (now) return Promise.resolve(now);
    return new Promise((resolve) => this.waiters.push(() => resolve(this.releaser())));
  }
  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.held = false;
    };
  }
}

/**
 * The write gate as a writer on another connection of this process uses it (the ingest writer
 * thread, app/ingest-writer.ts): it may hold the gate across several of its commits, as long as
 * it gives it back once shouldYield() says so.
 */
export interface SideWriter {
  /** Waits for the write gate (FIFO with this connection's writes); the function gives it back. */
  acquire(): Promise<() => void>;
  /** A write of this connection waits for the gate, or a finishing checkpoint is due: finish what is under way, then give the gate back. */
  shouldYield(): boolean;
  /** Counts one of the side writer's commits for the checkpointer. */
  committed(): void;
  /** Just before giving the gate back, with no write under way: runs the finishing checkpoint when one is due. */
  beforeRelease(): Promise<void>;
}

/** better-sqlite3, or a wrapper in front of its prepare() (the statement cache). */
type Db = { prepare(sql: string): SqliteDatabase.Statement; close(): void };

/** Statements whose row count tells whether they wrote (DDL and pragmas report 0 rows, yet may write). */
const ROW_WRITE = /^\s*(insert|update|delete)\b/i;

function pragma(db: Db, setting: string): void {
  const stmt = db.prepare(`pragma ${setting}`);
  if (stmt.reader) stmt.all();
  else stmt.run();
}

/** One use of the connection, from acquire to release; it may give the lock back early (after COMMIT). */
class Lease implements DatabaseConnection {
  inTransaction = false;
  private unlock: (() => void) | null;
  /** Held from BEGIN (or an autocommit write) until the commit is handed on. */
  private ungate: (() => void) | null = null;
  private readonly driver: GroupCommitDriver;
  private readonly db: Db;
  private readonly lock: Lock;

  constructor(driver: GroupCommitDriver, db: Db, lock: Lock, unlock: () => void) {
    this.driver = driver;
    this.db = db;
    this.lock = lock;
    this.unlock = unlock;
  }

  /**
   * Before BEGIN or an autocommit write: no other writer of this process is writing. While it
   * waits, the lease lets go of the connection, so reads go on (and a lease that holds the gate is
   * never stuck behind one waiting for it).
   */
  async gate(): Promise<void> {
    if (this.ungate) return;
    const now = this.driver.gate.tryAcquire();
    if (now) {
      this.ungate = now;
      return;
    }
    const u = this.unlock;
    this.unlock = null;
    u?.();
    this.ungate = await this.driver.gate.acquire();
    this.unlock = await this.lock.acquire();
  }

  releaseGate(): void {
    const u = this.ungate;
    this.ungate = null;
    u?.();
  }

  /** After a commit: hand the connection on, count the commit for the checkpointer, wait for the flush (unless another thread makes it). */
  async committed(): Promise<void> {
    // Still holding the connection and the write gate, outside any transaction: the place
    // SQLite's own checkpoint runs.
    await this.driver.afterCommit();
    this.release();
    if (this.driver.flushes) await this.driver.wal.flush();
  }

  release(): void {
    this.releaseGate();
    const u = this.unlock;
    this.unlock = null;
    u?.();
  }

  /**
   * Runs a statement synchronously; reports whether it may have written. An INSERT, UPDATE or
   * DELETE that touched no row wrote nothing (a worker's claim that found no work): no flush.
   */
  run(compiledQuery: CompiledQuery, prepared?: SqliteDatabase.Statement): { result: QueryResult<unknown>; wrote: boolean } {
    return this.runSql(compiledQuery.sql, compiledQuery.parameters, prepared);
  }

  private runSql(sql: string, parameters: readonly unknown[], prepared?: SqliteDatabase.Statement): { result: QueryResult<unknown>; wrote: boolean } {
    const stmt = prepared ?? this.db.prepare(sql);
    if (stmt.reader) {
      const rows = stmt.all(parameters as unknown[]);
      return { result: { rows }, wrote: !stmt.readonly && (rows.length > 0 || !ROW_WRITE.test(sql)) };
    }
    const { changes, lastInsertRowid } = stmt.run(parameters as unknown[]);
    return {
      result: {
        insertId: lastInsertRowid != null ? BigInt(lastInsertRowid) : undefined,
        numAffectedRows: changes != null ? BigInt(changes) : undefined,
        rows: [],
      },
      wrote: !stmt.readonly && (changes > 0 || !ROW_WRITE.test(sql)),
    };
  }

  /**
   * A statement of this lease's open transaction, run at once (store.transaction's direct path,
   * repos/compiled.ts). Kysely's executor would run the same statement on the same connection,
   * after about ten promise steps.
   */
  runInTransaction(sqlText: string, params: readonly unknown[]): QueryResult<unknown> {
    if (!this.inTransaction) throw new Error('a statement of a transaction that is no longer open');
    return this.runSql(sqlText, params, this.db.prepare(sqlText)).result;
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    // Used again after it gave the lock back (a caller holding one connection for several statements).
    if (!this.unlock) this.unlock = await this.lock.acquire();
    const stmt = this.db.prepare(compiledQuery.sql);
    if (this.inTransaction) return this.run(compiledQuery, stmt).result as QueryResult<R>;
    if (!stmt.readonly) await this.gate();
    const { result, wrote } = this.run(compiledQuery, stmt);
    // An autocommit write: hand the connection on, then wait for its flush.
    if (wrote) await this.committed();
    else this.releaseGate();
    return result as QueryResult<R>;
  }

  async *streamQuery<R>(compiledQuery: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    yield await this.executeQuery<R>(compiledQuery);
  }
}

/**
 * Side-writer commits between two checkpoints this connection runs for them when the checkpoint
 * worker is gone: at ~100 WAL pages a receiving commit, about SQLite's own threshold (1,000 pages).
 */
const FALLBACK_SIDE_COMMITS = 10;

class GroupCommitDriver implements Driver {
  private readonly db: Db;
  private readonly lock = new Lock();
  readonly gate = new WriteGate();
  readonly wal: WalFlusher;
  /** Null for a connection that leaves checkpoints to another one (the ingest writer thread's). */
  private readonly checkpointer: Checkpointer | null;
  /** Armed by onCommitted() for the transaction now running: called right after its COMMIT. */
  private commitHook: (() => void) | null = null;

  /**
   * Whether a commit resolves only once it is flushed. False for the ingest writer thread's
   * connection: its commits resolve at COMMIT and another thread flushes the WAL (the ingest
   * flusher thread) before anything is acknowledged. The writer thread runs its batches without
   * yielding, so an fsync it started itself was heard only after its next batch.
   */
  readonly flushes: boolean;

  constructor(db: Db, databasePath: string, options: GroupCommitOptions = {}) {
    this.db = db;
    this.flushes = options.flushes ?? true;
    this.wal = new WalFlusher(databasePath);
    // The connection leaves checkpoints to the worker; if the worker cannot run, SQLite's own
    // automatic checkpoint (its default threshold) comes back.
    pragma(db, 'wal_autocheckpoint = 0');
    this.checkpointer = options.checkpoints === false ? null : new Checkpointer(databasePath, () => pragma(db, 'wal_autocheckpoint = 1000'));
  }

  async init(): Promise<void> {}

  /** The lease of the transaction open on the connection, from its BEGIN to its COMMIT or ROLLBACK. */
  private open: Lease | null = null;

  /**
   * Runs statements of the transaction open now (called from inside it, by store.transaction):
   * synchronously, on its connection, which it holds until its COMMIT. Null outside a transaction.
   */
  transactionRunner(): ((sqlText: string, params: readonly unknown[]) => QueryResult<unknown>) | null {
    const lease = this.open;
    return lease && ((sqlText, params) => lease.runInTransaction(sqlText, params));
  }

  /**
   * Calls fn right after the COMMIT of the transaction now running on the connection has run, before
   * it is flushed (it is not durable yet). Called from inside that transaction.
   */
  onCommitted(fn: () => void): void {
    const prev = this.commitHook;
    this.commitHook = prev ? () => (prev(), fn()) : fn;
  }

  /**
   * After a commit by this connection, still holding the write gate: counts it for the
   * checkpointer, and runs the finishing checkpoint when one is due. The commit has
   * happened: a failed checkpoint must not turn it into an error (the next finishing step, or
   * SQLite's own on close, copies the WAL).
   */
  async afterCommit(): Promise<void> {
    await this.finishCheckpoint();
    this.checkpointer?.committed();
  }

  private async finishCheckpoint(): Promise<void> {
    if (!this.checkpointer?.takeFinishDue()) return;
    if (await this.checkpointer.finish()) return;
    try {
      pragma(this.db, 'wal_checkpoint(PASSIVE)');
    } catch {
      // Nothing to undo; the WAL simply does not start over yet.
    }
  }

  /** Commits of the side writer since this connection last checkpointed for it (without the worker). */
  private sideCommits = 0;

  /**
   * Without the checkpoint worker, SQLite's own checkpoints are back on this connection, but they run
   * only in its own commits, and the side writer's connection has them off: so every
   * FALLBACK_SIDE_COMMITS of the side writer's commits this connection checkpoints, between two of
   * its holds of the gate (on the event loop, as SQLite's own checkpoint would in a commit).
   */
  private get sideCheckpointDue(): boolean {
    return (this.checkpointer?.unavailable ?? false) && this.sideCommits >= FALLBACK_SIDE_COMMITS;
  }

  /** What a writer on another connection of this process (the ingest writer thread) uses. */
  readonly side: SideWriter = {
    acquire: () => this.gate.acquire(),
    shouldYield: () => this.gate.waiting > 0 || (this.checkpointer?.finishPending ?? false) || this.sideCheckpointDue,
    committed: () => {
      if (this.checkpointer?.unavailable) this.sideCommits++;
      this.checkpointer?.committed();
    },
    beforeRelease: async () => {
      await this.finishCheckpoint();
      if (!this.sideCheckpointDue) return;
      this.sideCommits = 0;
      try {
        pragma(this.db, 'wal_checkpoint(PASSIVE)');
      } catch {
        // Busy: the next one tries again.
      }
    },
  };

  async acquireConnection(): Promise<DatabaseConnection> {
    return new Lease(this, this.db, this.lock, await this.lock.acquire());
  }

  async beginTransaction(connection: DatabaseConnection, _settings: TransactionSettings): Promise<void> {
    const lease = connection as Lease;
    await lease.gate();
    lease.inTransaction = true;
    this.commitHook = null;
    // IMMEDIATE: the write lock is taken at BEGIN. Against another process writing the same file
    // (the CLI, a second start running migrations) a transaction then waits at BEGIN (busy_timeout)
    // instead of failing later when it first writes over a snapshot that has moved on.
    try {
      lease.run(CompiledQuery.raw('begin immediate'));
      this.open = lease;
    } catch (err) {
      lease.inTransaction = false;
      lease.releaseGate();
      throw err;
    }
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const lease = connection as Lease;
    this.open = null;
    lease.run(CompiledQuery.raw('commit'));
    lease.inTransaction = false;
    const hook = this.commitHook;
    this.commitHook = null;
    hook?.();
    // The next transaction may start writing while this one's frames are flushed.
    await lease.committed();
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const lease = connection as Lease;
    this.open = null;
    lease.inTransaction = false;
    this.commitHook = null;
    try {
      lease.run(CompiledQuery.raw('rollback'));
    } finally {
      lease.releaseGate();
    }
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    (connection as Lease).release();
  }

  async destroy(): Promise<void> {
    // Whoever still waits for a flush holds its promise; closing does not cancel it.
    await this.wal.flush().catch(() => undefined);
    this.wal.close();
    await this.checkpointer?.close();
    this.db.close();
  }
}

export interface GroupCommitOptions {
  /** False: another connection runs the checkpoints (the writer thread's connection leaves them to the store's). */
  checkpoints?: boolean;
  /** False: commits resolve at COMMIT, before they are durable; whoever acknowledges them flushes first (GroupCommitDriver.flushes). */
  flushes?: boolean;
}

/** Our driver serialises use of the one connection itself (and lets go of it at COMMIT). */
class GroupCommitAdapter extends SqliteAdapter {
  override get supportsMultipleConnections(): boolean {
    return true;
  }
  /**
   * SQLite runs DDL inside transactions; Kysely's adapter says it does not (some statements, such
   * as VACUUM, cannot), and its Migrator then runs migrations statement by statement. Ours use none
   * of those, so each start's migrations commit or roll back whole: a crash in the middle of a long
   * one (009 copies the messages table) leaves the database as it was.
   */
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

export class GroupCommitSqliteDialect extends SqliteDialect {
  private readonly db: Db;
  private readonly databasePath: string;
  private readonly options: GroupCommitOptions;
  /** The driver, once Kysely has created it (the store reaches the write gate through it). */
  driver: GroupCommitDriver | null = null;
  constructor(db: Db, databasePath: string, options: GroupCommitOptions = {}) {
    super({ database: db as SqliteDatabase.Database });
    this.db = db;
    this.databasePath = databasePath;
    this.options = options;
  }
  override createDriver(): Driver {
    this.driver = new GroupCommitDriver(this.db, this.databasePath, this.options);
    return this.driver;
  }
  override createAdapter(): SqliteAdapter {
    return new GroupCommitAdapter();
  }
}
