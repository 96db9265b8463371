// What every repository shares: the query handle (the database or the open transaction) and the
// keyset-pagination predicate.
import type { Kysely } from 'kysely';
import type { PageKey } from '../../core/cursor.ts';
import type { Clock } from '../../core/clock.ts';
import type { Database } from '../schema.ts';
import type { Dialect } from '../dialect.ts';

export interface RepoContext {
  db: Kysely<Database>;
  clock: Clock;
  dialect: Dialect;
}

export interface ListQuery {
  limit: number;
  after: PageKey | null;
}

/** Unique-constraint violations look different on each backend. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string } | null;
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
