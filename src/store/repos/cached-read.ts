// A point read whose SQL is compiled by Kysely once per query shape and then run through the fast
// path (store/fast-read.ts) with each call's parameters. Inside a transaction, or when the fast
// path cannot run, the same query goes through Kysely as usual.
import type { CompiledQuery, Kysely } from 'kysely';
import type { Database } from '../schema.ts';
import { FAST_READ_UNAVAILABLE } from '../fast-read.ts';
import type { RepoContext } from './common.ts';
import { compiledSql, runCompiled } from './compiled.ts';

export interface PointQuery<T> {
  compile(): CompiledQuery;
  executeTakeFirst(): Promise<T | undefined>;
}

/** A value now, or a promise of it: the SQLite fast path answers synchronously. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * The first row of `build(db)`, synchronously when the fast path answers at once (SQLite outside a
 * transaction): no promise, no extra turn. `params` are the query's parameters in the order Kysely
 * compiles them; the first compile checks that they are, so a wrong order fails in every test, not
 * silently. `shared`: the caller never changes the row, so a kept row may be handed out without a
 * copy (it is frozen). `sameTurn`: the caller is a request's synchronous dispatch, which may share
 * this event-loop turn's read of the database's change marker (store/fast-read.ts).
 */
export function readFirstNow<T>(ctx: RepoContext, name: string, build: (db: Kysely<Database>) => PointQuery<T>, params: readonly unknown[], shared = false, sameTurn = false): MaybePromise<T | undefined> {
  const fast = ctx.fast;
  if (fast) {
    // Names are unique across repos: they also name PostgreSQL statements.
    const sqlText = compiledSql(ctx.db, ctx.dialect, `read ${name}`, build, params);
    const row = fast.first<T>(name, sqlText, params, shared, sameTurn);
    if (row instanceof Promise) return row.then((r) => (r !== FAST_READ_UNAVAILABLE ? r : throughKysely(ctx, name, build, params)));
    if (row !== FAST_READ_UNAVAILABLE) return row;
  }
  return throughKysely(ctx, name, build, params);
}

/** The same read through Kysely (inside a transaction, or when the fast path cannot run): compiled once too. */
async function throughKysely<T>(ctx: RepoContext, name: string, build: (db: Kysely<Database>) => PointQuery<T>, params: readonly unknown[]): Promise<T | undefined> {
  const r = await runCompiled<T>(ctx.db, ctx.dialect, `read ${name}`, build, params);
  return r.rows[0];
}

/**
 * The first row of `build(db)` as the database holds it now, on the fast path without keeping it
 * (FastRead.current): for point reads made while other writers commit every few milliseconds
 * (inbound recipient checks), where a kept row is hardly ever reused.
 */
export async function readCurrent<T>(ctx: RepoContext, name: string, build: (db: Kysely<Database>) => PointQuery<T>, params: readonly unknown[]): Promise<T | undefined> {
  const fast = ctx.fast;
  if (fast) {
    const sqlText = compiledSql(ctx.db, ctx.dialect, `read ${name}`, build, params);
    const row = await fast.current<T>(name, sqlText, params);
    if (row !== FAST_READ_UNAVAILABLE) return row;
  }
  return throughKysely(ctx, name, build, params);
}

/** readFirstNow, always as a promise. */
export async function readFirst<T>(ctx: RepoContext, name: string, build: (db: Kysely<Database>) => PointQuery<T>, params: readonly unknown[], shared = false): Promise<T | undefined> {
  return readFirstNow(ctx, name, build, params, shared);
}
