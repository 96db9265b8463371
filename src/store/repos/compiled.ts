// Hot statements with their SQL compiled once per query shape. Building a query with Kysely and
// compiling it costs more than running it (an INSERT of the messages row: ~50 µs to build, a
// change-log append ~20 µs; ingest ran ~20 of them per message). Here Kysely compiles a statement
// the first time its shape is seen; later calls pass only their parameters. The statement still
// runs through Kysely's executor, on the caller's connection or transaction.
//
// A shape is the caller's name for it plus whatever changes the SQL (the columns of a row, the
// length of a list); the first compile checks that the caller passes the parameters in the order
// the SQL binds them, so a wrong order fails in every test that reaches it, not silently.
import { CompiledQuery, type Kysely, type QueryResult } from 'kysely';
import type { Database } from '../schema.ts';
import type { Dialect } from '../dialect.ts';

export interface Compilable {
  compile(): CompiledQuery;
}

/** SQL text per dialect and shape. Shapes come from code, never from user input: the maps stay small. */
const compiled: Record<Dialect, Map<string, string>> = { sqlite: new Map(), postgres: new Map() };

function sameParams(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && a.every((p, i) => p === b[i]);
}

/**
 * PostgreSQL: a name per compiled SQL text. The store's pool runs these texts as named prepared
 * statements (store/index.ts): each connection parses a statement once and PostgreSQL may keep
 * its plan, instead of parsing and planning it on every execution.
 */
const preparedNames = new Map<string, string>();

/** The prepared-statement name of a compiled PostgreSQL statement, or undefined for any other text. */
export function preparedName(sqlText: string): string | undefined {
  return preparedNames.get(sqlText);
}

/** The SQL text of `build(db)` in this dialect, compiled only the first time this shape is seen. */
export function compiledSql(db: Kysely<Database>, dialect: Dialect, shape: string, build: (db: Kysely<Database>) => Compilable, params: readonly unknown[]): string {
  const byShape = compiled[dialect];
  let sqlText = byShape.get(shape);
  if (sqlText === undefined) {
    const c = build(db).compile();
    // No values in the message: they may be message text or secrets.
    if (!sameParams(c.parameters, params)) throw new Error(`compiled statement ${shape}: ${params.length} params given, the compiled statement has ${c.parameters.length} or another order`);
    sqlText = c.sql;
    byShape.set(shape, sqlText);
    if (dialect === 'postgres' && !preparedNames.has(sqlText)) preparedNames.set(sqlText, `mmx_${preparedNames.size + 1}`);
  }
  return sqlText;
}

/** Runs one statement of an open SQLite transaction on its connection, synchronously. */
export type TransactionRunner = (sqlText: string, params: readonly unknown[]) => QueryResult<unknown>;

/**
 * The runner of each open SQLite transaction, by its Kysely transaction object (store.transaction
 * sets it at the start and removes it before the COMMIT). A delivery runs ~20 statements in its
 * batch's transaction; through Kysely's executor each took about ten promise steps (connection
 * provider, executor, driver) around a statement that runs in microseconds.
 */
const runners = new WeakMap<Kysely<Database>, TransactionRunner>();

export function setTransactionRunner(trx: Kysely<Database>, run: TransactionRunner | null): void {
  if (run) runners.set(trx, run);
  else runners.delete(trx);
}

/** Runs an SQL text with its parameters: directly in an open SQLite transaction, else through Kysely. */
export function runSql<R>(db: Kysely<Database>, sqlText: string, params: readonly unknown[]): Promise<QueryResult<R>> {
  const run = runners.get(db);
  if (!run) return db.executeQuery<R>(CompiledQuery.raw(sqlText, params as unknown[]));
  try {
    return Promise.resolve(run(sqlText, params) as QueryResult<R>);
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

/** Runs `build(db)` with `params`, compiling it only the first time this shape is seen. */
export function runCompiled<R>(db: Kysely<Database>, dialect: Dialect, shape: string, build: (db: Kysely<Database>) => Compilable, params: readonly unknown[]): Promise<QueryResult<R>> {
  return runSql<R>(db, compiledSql(db, dialect, shape, build, params), params);
}

/** The columns Kysely writes for a row (it leaves out undefined values) and their values, in order. */
export function rowShape(row: object): { columns: string; values: unknown[] } {
  let columns = '';
  const values: unknown[] = [];
  for (const k in row) {
    const v = (row as Record<string, unknown>)[k];
    if (v === undefined) continue;
    columns += `${k},`;
    values.push(v);
  }
  return { columns, values };
}

/**
 * The values of several rows of one shape, row after row (a multi-row INSERT binds them so), or
 * null when the rows differ in their columns (the caller builds that statement as usual).
 */
export function rowsShape(rows: readonly object[]): { columns: string; values: unknown[] } | null {
  const first = rowShape(rows[0] ?? {});
  const values = first.values;
  for (let i = 1; i < rows.length; i++) {
    const next = rowShape(rows[i]!);
    if (next.columns !== first.columns) return null;
    values.push(...next.values);
  }
  return { columns: `${first.columns}x${rows.length}`, values };
}

/** INSERT of one row (or several rows of one shape), compiled once per table, columns and RETURNING. */
export function insertRows<R>(db: Kysely<Database>, dialect: Dialect, table: keyof Database & string, rows: object | readonly object[], returning: readonly string[] | '*' | null = null): Promise<QueryResult<R>> {
  const list = Array.isArray(rows) ? (rows as readonly object[]) : [rows as object];
  const shape = list.length === 1 ? rowShape(list[0]!) : rowsShape(list);
  const build = (d: Kysely<Database>): Compilable => {
    const q = d.insertInto(table).values(list as never);
    if (returning === '*') return q.returningAll();
    return returning ? q.returning(returning as never) : q;
  };
  // Rows of different columns: built as usual.
  if (shape === null) return db.executeQuery<R>(build(db).compile() as CompiledQuery<R>);
  return runCompiled<R>(db, dialect, `insert ${table} (${shape.columns}) returning ${returning === null ? '' : String(returning)}`, build, shape.values);
}

/** Rows of one insertRowsChunked INSERT at most (a power of two). */
const CHUNK_ROWS = 32;

/**
 * Many rows of one shape (a batch's change-log, incoming-log or event rows); `returning`: the
 * columns to read back from every row (in no promised order). SQLite: multi-row INSERTs of 32, 16,
 * ... 1 rows, a handful of compiled statements however many rows. PostgreSQL, given the types of
 * the columns that are not text: one INSERT of them all, from one array a column (unnest),
 * compiled once: a statement is a round trip there, and ingest writes these while holding the
 * write-order lock.
 */
export async function insertRowsChunked<R = unknown>(
  db: Kysely<Database>,
  dialect: Dialect,
  table: keyof Database & string,
  rows: readonly object[],
  pgTypes?: Readonly<Record<string, string>>,
  returning: readonly string[] | null = null,
): Promise<R[]> {
  if (dialect === 'postgres' && pgTypes && rows.length > 1) {
    const columns = Object.keys(rows[0]!);
    const back = returning ? ` RETURNING ${returning.map((c) => `"${c}"`).join(', ')}` : '';
    const text = `INSERT INTO ${table} (${columns.map((c) => `"${c}"`).join(', ')}) SELECT * FROM unnest(${columns.map((c, i) => `$${i + 1}::${pgTypes[c] ?? 'text'}[]`).join(', ')})${back}`;
    const params = columns.map((c) => rows.map((r) => (r as Record<string, unknown>)[c] ?? null));
    return (await runCompiled<R>(db, dialect, `insert unnest ${table} (${columns.join(',')})${back}`, () => ({ compile: () => CompiledQuery.raw(text, params) }), params)).rows;
  }
  const out: R[] = [];
  for (let i = 0; i < rows.length; ) {
    let n = CHUNK_ROWS;
    while (n > rows.length - i) n >>= 1;
    out.push(...(await insertRows<R>(db, dialect, table, rows.slice(i, i + n), returning)).rows);
    i += n;
  }
  return out;
}

/**
 * INSERT of one row whose key is generated (an INTEGER PRIMARY KEY on SQLite, a serial on
 * PostgreSQL); resolves with the key. SQLite reports the new rowid with every INSERT, so there it
 * is read from the result instead of a RETURNING clause, which makes SQLite collect the returned
 * row in a temporary table first (~5 µs of each change-log and event append).
 */
export async function insertReturningKey(db: Kysely<Database>, dialect: Dialect, table: keyof Database & string, row: object, key: string): Promise<number> {
  if (dialect === 'sqlite') {
    const r = await insertRows(db, dialect, table, row);
    if (r.insertId === undefined) throw new Error(`insert into ${table} reported no rowid`);
    return Number(r.insertId);
  }
  const r = await insertRows<Record<string, number | bigint | string>>(db, dialect, table, row, [key]);
  const value = r.rows[0]?.[key];
  if (value === undefined) throw new Error(`insert into ${table} returned no ${key}`);
  return Number(value);
}
