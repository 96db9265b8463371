// Hot point reads (the API key of every request, the mailbox it names) without Kysely's per-call
// cost: building and compiling a query takes longer than running it. The SQL is compiled by Kysely
// once per query shape (repos/cached-read.ts); this runs it.
//
// SQLite: a prepared statement per query, run synchronously, only while no transaction is open on
// the one connection (else the caller goes through Kysely, which waits for the transaction: a read
// must never see another request's uncommitted rows). Rows read this way are also kept, but only
// for as long as the database has not changed at all: every commit, by this process or any other
// (the CLI, a second server), rewrites the WAL-index header in the `-shm` file (its change counter,
// last frame, salts and checksum; https://www.sqlite.org/walformat.html, "The WAL-Index Header").
// Each read compares that header (one pread of 96 bytes, no lock) with the one the rows were read
// under, and drops them all when it differs. So a key revoked or a mailbox suspended anywhere is
// seen by the next request, exactly as without the cache; what is saved is the statement and the
// two file-lock system calls SQLite needs to start a read. Callers get copies of the kept rows.
//
// Reads made for the requests of one event-loop turn (`sameTurn`: the HTTP server's synchronous
// request path) share one read of that header, taken by the first of them, instead of one each.
// A turn's requests were received by the poll that began it, so a commit by another process is seen
// by every request received in any later turn: by the next request, unless that request reached the
// server in the very turn (a millisecond or two) in which the commit finished, while the two ran
// concurrently. The process's own commits are seen at once (a request may revoke a key, and the
// next one in the same turn use it): SQLite's total_changes() counts this connection's row writes,
// and when it moved since the shared header was read the header is read again. No header is shared
// while a transaction is open (its COMMIT changes the database without moving that count). The
// shared header is dropped at the end of the turn (setImmediate runs after the poll phase).
// Without `sameTurn` every read reads the header itself.
//
// PostgreSQL: a named prepared statement (parsed and planned once per pooled connection). Nothing
// is kept: telling whether another process committed would cost the round trip it saves. Instead
// the reads asked for in one turn are sent together (pgFastRead below): one round trip for a turn
// of requests, each read still sent after its request arrived.
import { closeSync, openSync, readSync } from 'node:fs';
import type SqliteDatabase from 'better-sqlite3';
import type pg from 'pg';

/** Returned when the fast path cannot run now: the caller uses the ordinary Kysely query. */
export const FAST_READ_UNAVAILABLE: unique symbol = Symbol('fast read unavailable');

export interface FastRead {
  /**
   * The first row of a read-only statement (in the dialect's placeholders), outside any
   * transaction: at once on SQLite, a promise on PostgreSQL. `sameTurn`: the caller runs
   * synchronously in the dispatch of a request received in this event-loop turn (see above).
   */
  first<T>(name: string, sqlText: string, params: readonly unknown[], shared?: boolean, sameTurn?: boolean): T | undefined | typeof FAST_READ_UNAVAILABLE | Promise<T | undefined | typeof FAST_READ_UNAVAILABLE>;
  /**
   * The same read of a row as it is now, never kept (SQLite: no change marker read), for reads
   * made while other writers commit every few milliseconds (inbound recipient checks while mail is
   * written): a kept row would hardly ever be reused, and checking the marker costs two reads of
   * the -shm file. The row may be shared (callers do not change it).
   */
  current<T>(name: string, sqlText: string, params: readonly unknown[]): T | undefined | typeof FAST_READ_UNAVAILABLE | Promise<T | undefined | typeof FAST_READ_UNAVAILABLE>;
  close(): void;
}

/** Rows kept at most (distinct keys and mailboxes read since the last commit); then all are dropped. */
const KEPT_ROWS_MAX = 10_000;
/** The two copies of the 48-byte WAL-index header at the start of the -shm file. */
const WAL_INDEX_HEADER_BYTES = 48;

/**
 * Reads the WAL-index header of a SQLite database in WAL mode. Returns null when it cannot be
 * trusted: no -shm file, not initialised, or caught mid-update (its two copies differ; SQLite's own
 * readers make the same check).
 */
class WalIndexHeader {
  private fd: number | null = null;
  private readonly path: string;
  private readonly buf = Buffer.alloc(WAL_INDEX_HEADER_BYTES * 2);
  private closed = false;

  constructor(databasePath: string) {
    this.path = `${databasePath}-shm`;
  }

  read(): string | null {
    if (this.closed) return null;
    if (this.fd === null) {
      try {
        this.fd = openSync(this.path, 'r');
      } catch {
        return null;
      }
    }
    const buf = this.buf;
    if (readSync(this.fd, buf, 0, buf.length, 0) !== buf.length) return null;
    // isInit (byte 12) is set once the header is valid.
    if (buf[12] !== 1) return null;
    if (buf.compare(buf, WAL_INDEX_HEADER_BYTES, WAL_INDEX_HEADER_BYTES * 2, 0, WAL_INDEX_HEADER_BYTES) !== 0) return null;
    return buf.toString('latin1', 0, WAL_INDEX_HEADER_BYTES);
  }

  close(): void {
    this.closed = true;
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

export function sqliteFastRead(file: SqliteDatabase.Database): FastRead {
  // Statements per query name: a handful of hot reads, never user-controlled text.
  const statements = new Map<string, SqliteDatabase.Statement>();
  const header = new WalIndexHeader(file.name);
  // Only a database in WAL mode keeps that header current; in any other mode rows are never kept.
  if (String(file.pragma('journal_mode', { simple: true })).toLowerCase() !== 'wal') header.close();
  const kept = new Map<string, object>();
  let keptUnder: string | null = null;
  let closed = false;

  // The header shared by this turn's request reads, and this connection's write count when it was read.
  const totalChanges = file.prepare('select total_changes()').pluck();
  let turnHeader: string | null = null;
  let turnChanges = 0;
  let turnEnd: NodeJS.Immediate | null = null;
  const endTurn = (): void => {
    turnHeader = null;
    turnEnd = null;
  };
  const headerForTurn = (): string | null => {
    const changes = totalChanges.get() as number;
    // (A transaction open now without writes yet commits nothing new; one that wrote moved the count.)
    if (turnHeader !== null && changes === turnChanges) return turnHeader;
    const h = header.read();
    shareForTurn(h, changes);
    return h;
  };
  // Never while a transaction is open: its COMMIT changes the database without moving total_changes().
  const shareForTurn = (h: string | null, changes: number): void => {
    if (h === null || file.inTransaction) return;
    turnHeader = h;
    turnChanges = changes;
    turnEnd ??= setImmediate(endTurn);
  };

  const prepared = (name: string, sqlText: string): SqliteDatabase.Statement => {
    let stmt = statements.get(name);
    if (stmt === undefined) {
      stmt = file.prepare(sqlText);
      statements.set(name, stmt);
    }
    return stmt;
  };

  return {
    current<T>(name: string, sqlText: string, params: readonly unknown[]) {
      // Inside a transaction the connection would show its uncommitted writes.
      if (closed || file.inTransaction || !file.open) return FAST_READ_UNAVAILABLE;
      return prepared(name, sqlText).get(...params) as T | undefined;
    },
    first<T>(name: string, sqlText: string, params: readonly unknown[], shared = false, sameTurn = false) {
      if (closed) return FAST_READ_UNAVAILABLE;
      const before = sameTurn ? headerForTurn() : header.read();
      let key = name;
      for (const p of params) key += `\u0000${String(p)}`;
      if (before !== null && before === keptUnder) {
        const row = kept.get(key);
        // Kept rows are frozen; a caller that may change what it is given gets a copy.
        if (row !== undefined) return (shared ? row : { ...row }) as T;
      }
      // Inside a transaction (ours, of any request) the connection would show its uncommitted writes.
      if (file.inTransaction || !file.open) return FAST_READ_UNAVAILABLE;
      const row = prepared(name, sqlText).get(...params) as T | undefined;
      if (before !== null && row !== undefined) {
        // Keep the row only if nothing committed while it was read: it is then the state `before` names.
        const after = header.read();
        if (after === before) {
          if (keptUnder !== before || kept.size >= KEPT_ROWS_MAX) {
            kept.clear();
            keptUnder = before;
          }
          kept.set(key, Object.freeze({ ...(row as object) }));
        } else if (sameTurn) {
          // The shared header was older than the database (another process committed during the
          // turn): the turn's later reads use the newer one, under which they can keep what they read.
          shareForTurn(after, totalChanges.get() as number);
        }
      }
      return row;
    },
    close() {
      closed = true;
      header.close();
      kept.clear();
      if (turnEnd !== null) clearImmediate(turnEnd);
      endTurn();
    },
  };
}

/** Most reads of one name sent as one batched statement (a turn of requests larger than this is split). */
const PG_BATCH_MAX = 256;

/**
 * The statement for `n`-parameter query `sqlText` run for many parameter tuples at once: one row per
 * tuple that has one (its first, as executeTakeFirst), tagged with the tuple's 1-based position.
 */
function batchedSql(sqlText: string, n: number): string {
  const cols = Array.from({ length: n }, (_, i) => `p${i + 1}`);
  const inner = sqlText.replace(/\$(\d+)/g, (_, i: string) => `mmx_b.p${i}`);
  return `select mmx_q.*, mmx_b.mmx_i from unnest(${cols.map((_, i) => `$${i + 1}::text[]`).join(', ')}) with ordinality as mmx_b(${cols.join(', ')}, mmx_i) cross join lateral (select * from (${inner}) as mmx_s limit 1) as mmx_q`;
}

export function pgFastRead(pool: pg.Pool): FastRead {
  // A statement whose result type changed under it (a column added by a newer process's migration)
  // fails with 0A000 on that connection; Kysely's unnamed statements then serve that query.
  const broken = new Set<string>();
  const unavailable = (name: string, err: unknown): typeof FAST_READ_UNAVAILABLE => {
    if ((err as { code?: string }).code !== '0A000') throw err;
    broken.add(name);
    return FAST_READ_UNAVAILABLE;
  };
  const single = <T>(name: string, sqlText: string, params: readonly unknown[]): Promise<T | undefined | typeof FAST_READ_UNAVAILABLE> =>
    pool.query({ name: `mmx_${name}`, text: sqlText, values: params as unknown[] }).then(
      (r) => r.rows[0] as T | undefined,
      (err: unknown) => unavailable(name, err),
    );

  // The reads asked for in one event-loop turn, per query name, sent together when the turn ends
  // (setImmediate runs after the poll phase, which dispatched this turn's requests): one round trip
  // and one statement for all of them. Each is still sent after the request that asked for it
  // arrived, so it sees every commit that finished before; each caller gets its own row.
  interface Waiter {
    params: readonly unknown[];
    shared: boolean;
    resolve(row: unknown): void;
    reject(err: unknown): void;
  }
  const pending = new Map<string, { sqlText: string; waiters: Waiter[] }>();
  // The batched statement's text per query name and parameter count, built once.
  const batchedTexts = new Map<string, string>();
  const batchedText = (name: string, sqlText: string, n: number): string => {
    const key = `${name}/${n}`;
    let text = batchedTexts.get(key);
    if (text === undefined) {
      text = batchedSql(sqlText, n);
      batchedTexts.set(key, text);
    }
    return text;
  };
  let flushing: NodeJS.Immediate | null = null;
  const flush = (): void => {
    flushing = null;
    const batches = [...pending];
    pending.clear();
    for (const [name, { sqlText, waiters }] of batches) {
      for (let at = 0; at < waiters.length; at += PG_BATCH_MAX) {
        const some = waiters.slice(at, at + PG_BATCH_MAX);
        try {
          send(name, sqlText, some);
        } catch (err) {
          // Never an uncaught exception in an immediate: the callers get the error.
          for (const w of some) w.reject(err);
        }
      }
    }
  };
  const send = (name: string, sqlText: string, waiters: Waiter[]): void => {
    const only = waiters.length === 1 ? waiters[0] : undefined;
    if (only) {
      single(name, sqlText, only.params).then(only.resolve, only.reject);
      return;
    }
    // Identical asks (one client's requests in the same turn) are read once.
    const slotOf = new Map<string, number>();
    const tuples: (readonly unknown[])[] = [];
    const slots = waiters.map((w) => {
      const k = w.params.join('\u0000');
      let slot = slotOf.get(k);
      if (slot === undefined) {
        slot = tuples.push(w.params) - 1;
        slotOf.set(k, slot);
      }
      return slot;
    });
    const n = tuples[0]!.length;
    const values = Array.from({ length: n }, (_, j) => tuples.map((t) => t[j]));
    // Rows as arrays: each row object is built here without the position column (deleting it from
    // pg's row object would turn every row into a slow dictionary-mode object).
    pool.query({ name: `mmx_batch_${name}`, text: batchedText(name, sqlText, n), values, rowMode: 'array' }).then(
      (r) => {
        const rows: (object | undefined)[] = [];
        const last = r.fields.length - 1; // mmx_i, the tuple's position
        const names = r.fields.map((f) => f.name);
        for (const values of r.rows as unknown[][]) {
          const row: Record<string, unknown> = {};
          for (let k = 0; k < last; k++) row[names[k]!] = values[k];
          // Frozen: callers that share a row cannot change it for each other; the others get copies.
          rows[Number(values[last]) - 1] = Object.freeze(row);
        }
        waiters.forEach((w, i) => {
          const row = rows[slots[i]!];
          w.resolve(row === undefined || w.shared ? row : { ...row });
        });
      },
      (err: unknown) => {
        let outcome: typeof FAST_READ_UNAVAILABLE;
        try {
          outcome = unavailable(name, err);
        } catch {
          for (const w of waiters) w.reject(err);
          return;
        }
        for (const w of waiters) w.resolve(outcome);
      },
    );
  };

  const first = <T>(name: string, sqlText: string, params: readonly unknown[], shared = false): T | undefined | typeof FAST_READ_UNAVAILABLE | Promise<T | undefined | typeof FAST_READ_UNAVAILABLE> => {
      if (broken.has(name)) return FAST_READ_UNAVAILABLE;
      // Only text parameters batch (the batched statement takes text arrays): every hot read's are.
      if (!params.every((p) => typeof p === 'string')) return single<T>(name, sqlText, params);
      return new Promise<T | undefined | typeof FAST_READ_UNAVAILABLE>((resolve, reject) => {
        let batch = pending.get(name);
        if (batch === undefined) {
          batch = { sqlText, waiters: [] };
          pending.set(name, batch);
        }
        batch.waiters.push({ params, shared, resolve: resolve as (row: unknown) => void, reject });
        flushing ??= setImmediate(flush);
      });
  };

  return {
    first,
    // Nothing is kept on PostgreSQL anyway.
    current: (name, sqlText, params) => first(name, sqlText, params, true),
    close() {
      // Reads already asked for are sent now (the pool closes after this).
      if (flushing !== null) {
        clearImmediate(flushing);
        flush();
      }
    },
  };
}
