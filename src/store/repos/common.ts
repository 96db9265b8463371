// What every repository shares: the query handle (the database or the open transaction) and the
// keyset-pagination predicate.
import { sql, type Kysely } from 'kysely';
import type { PageKey } from '../../core/cursor.ts';
import type { Clock } from '../../core/clock.ts';
import type { Database } from '../schema.ts';
import type { Dialect } from '../dialect.ts';

export interface RepoContext {
  db: Kysely<Database>;
  clock: Clock;
  dialect: Dialect;
  /** True inside store.transaction(). */
  inTransaction?: boolean;
  afterCommit?: (fn: () => void) => void;
  /** Per-transaction memo: the write-order lock is already held. */
  orderLockHeld?: boolean;
}

/**
 * On PostgreSQL, serialises the tail of every transaction that appends to the change log or the
 * event log: taken before the first append, held until commit. So ids commit in id order and a
 * reader that saw id N has seen every id below N: state tokens are consistent prefixes of the log,
 * and a tail of the event log by id never skips a row that commits late. SQLite has one writer.
 */
export async function takeWriteOrderLock(ctx: RepoContext): Promise<void> {
  if (ctx.dialect !== 'postgres' || ctx.orderLockHeld) return;
  if (!ctx.inTransaction) return; // a single statement is its own transaction: ids commit at once
  await sql`select pg_advisory_xact_lock(${WRITE_ORDER_LOCK_KEY})`.execute(ctx.db);
  ctx.orderLockHeld = true;
}

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
