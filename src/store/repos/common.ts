// What every repository shares: the query handle (the database or the open transaction) and the
// keyset-pagination predicate.
import { sql, type Kysely } from 'kysely';
import type { PageKey } from '../../core/cursor.ts';
import type { Clock } from '../../core/clock.ts';
import type { Database } from '../schema.ts';
import type { Dialect } from '../dialect.ts';
import type { FastRead } from '../fast-read.ts';

export interface RepoContext {
  db: Kysely<Database>;
  clock: Clock;
  dialect: Dialect;
  /** True inside store.transaction(). */
  inTransaction?: boolean;
  afterCommit?: (fn: () => void) => void;
  /** Repos.afterWrite inside a transaction. */
  afterWrite?: (fn: () => void) => void;
  /**
   * SQLite, inside a transaction: runs fn in it after the caller's work, right before the COMMIT
   * (MessagesRepo's full-text rows). Hooks added while these run, run too.
   */
  beforeCommit?: (fn: () => Promise<void>) => void;
  /** Hot point reads outside a transaction (store/fast-read.ts); absent inside one. */
  fast?: FastRead;
}

/**
 * On PostgreSQL, serialises the transactions that write: store.transaction() takes this lock as its
 * first statement and holds it until commit. So change-log and event-log ids commit in id order
 * (a reader that saw id N has seen every id below N: state tokens are consistent prefixes of the
 * log, and a tail of the event log by id never skips a row that commits late), and since it comes
 * before any row lock, two transactions can never wait for each other. SQLite has one writer.
 */
export async function takeWriteOrderLock(db: Kysely<Database>, dialect: Dialect): Promise<void> {
  if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(${WRITE_ORDER_LOCK_KEY})`.execute(db);
}

/**
 * Runs an append under the write-order lock. A transaction already holds it (store.transaction
 * takes it first). Outside one (the data write before it has already committed on its own), the
 * append gets a small transaction of its own that takes the lock first, so its id cannot commit
 * ahead of a smaller id another transaction holds.
 */
export async function inWriteOrder<T>(ctx: RepoContext, fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  if (ctx.dialect !== 'postgres' || ctx.inTransaction) return fn(ctx.db);
  return ctx.db.transaction().execute(async (trx) => {
    await takeWriteOrderLock(trx, ctx.dialect);
    return fn(trx);
  });
}

/**
 * The values that define partial indexes (migrations 001, 005, 006), written into the SQL as
 * literals. Bound as parameters, SQLite still uses the partial index, but only by planning with
 * each execution's value, so it prepares the statement again every time: a mailbox read by address
 * took 56 µs instead of 13, the webhook and outbound claims 0.2 to 2 ms.
 */
export const DELETED = sql.lit<'deleted'>('deleted');
export const PENDING = sql.lit<'pending'>('pending');
export const DUE_STATUSES = [sql.lit<'queued'>('queued'), sql.lit<'deferred'>('deferred')];

/** Arbitrary constant key of the advisory lock above ("mmux"). */
const WRITE_ORDER_LOCK_KEY = 0x6d6d7578;

export interface ListQuery {
  limit: number;
  after: PageKey | null;
}

/** Unique-constraint violations look different on each backend. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string } | null;
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
