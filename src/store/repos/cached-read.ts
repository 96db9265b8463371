// A point read whose SQL is compiled by Kysely once per query shape and then run through the fast
// path (store/fast-read.ts) with each call's parameters. Inside a transaction, or when the fast
// path cannot run, the same query goes through Kysely as usual.
import type { CompiledQuery, Kysely } from 'kysely';
import type { Database } from '../schema.ts';
import { FAST_READ_UNAVAILABLE } from '../fast-read.ts';
import type { RepoContext } from './common.ts';

export interface PointQuery<T> {
  compile(): CompiledQuery;
  executeTakeFirst(): Promise<T | undefined>;
}

/** SQL text per dialect and query name (names are unique across repos: they also name PostgreSQL statements). */
const compiled = new Map<string, string>();

/**
 * The first row of `build(db)`. `params` are the query's parameters in the order Kysely compiles
 * them; the first compile checks that they are, so a wrong order fails in every test, not silently.
 * `shared`: the caller never changes the row, so a kept row may be handed out without a copy (it
 * is frozen).
 */
export async function readFirst<T>(ctx: RepoContext, name: string, build: (db: Kysely<Database>) => PointQuery<T>, params: readonly unknown[], shared = false): Promise<T | undefined> {
  const fast = ctx.fast;
  if (fast) {
    const key = `${ctx.dialect}:${name}`;
    let sqlText = compiled.get(key);
    if (sqlText === undefined) {
      const c = build(ctx.db).compile();
      if (c.parameters.length !== params.length || c.parameters.some((p, i) => p !== params[i])) {
        // No values in the message: they may be key hashes.
        throw new Error(`readFirst(${name}): ${params.length} params given, the compiled query has ${c.parameters.length} or another order`);
      }
      sqlText = c.sql;
      compiled.set(key, sqlText);
    }
    let row = fast.first<T>(name, sqlText, params, shared);
    if (row instanceof Promise) row = await row;
    if (row !== FAST_READ_UNAVAILABLE) return row;
  }
  return build(ctx.db).executeTakeFirst();
}
