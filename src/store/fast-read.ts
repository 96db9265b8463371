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
// PostgreSQL: a named prepared statement (parsed and planned once per pooled connection). Nothing
// is kept: telling whether another process committed would cost the round trip it saves.
import { closeSync, openSync, readSync } from 'node:fs';
import type SqliteDatabase from 'better-sqlite3';
import type pg from 'pg';

/** Returned when the fast path cannot run now: the caller uses the ordinary Kysely query. */
export const FAST_READ_UNAVAILABLE: unique symbol = Symbol('fast read unavailable');

export interface FastRead {
  /**
   * The first row of a read-only statement (in the dialect's placeholders), outside any
   * transaction: at once on SQLite, a promise on PostgreSQL.
   */
  first<T>(name: string, sqlText: string, params: readonly unknown[], shared?: boolean): T | undefined | typeof FAST_READ_UNAVAILABLE | Promise<T | undefined | typeof FAST_READ_UNAVAILABLE>;
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

  return {
    first<T>(name: string, sqlText: string, params: readonly unknown[], shared = false) {
      if (!file.open) return FAST_READ_UNAVAILABLE;
      const before = header.read();
      let key = name;
      for (const p of params) key += `\u0000${String(p)}`;
      if (before !== null && before === keptUnder) {
        const row = kept.get(key);
        // Kept rows are frozen; a caller that may change what it is given gets a copy.
        if (row !== undefined) return (shared ? row : { ...row }) as T;
      }
      // Inside a transaction (ours, of any request) the connection would show its uncommitted writes.
      if (file.inTransaction) return FAST_READ_UNAVAILABLE;
      let stmt = statements.get(name);
      if (stmt === undefined) {
        stmt = file.prepare(sqlText);
        statements.set(name, stmt);
      }
      const row = stmt.get(...params) as T | undefined;
      // Keep the row only if nothing committed while it was read: it is then the state `before` names.
      if (before !== null && row !== undefined && header.read() === before) {
        if (keptUnder !== before || kept.size >= KEPT_ROWS_MAX) {
          kept.clear();
          keptUnder = before;
        }
        kept.set(key, Object.freeze({ ...(row as object) }));
      }
      return row;
    },
    close() {
      header.close();
      kept.clear();
    },
  };
}

export function pgFastRead(pool: pg.Pool): FastRead {
  // A statement whose result type changed under it (a column added by a newer process's migration)
  // fails with 0A000 on that connection; Kysely's unnamed statements then serve that query.
  const broken = new Set<string>();
  return {
    first<T>(name: string, sqlText: string, params: readonly unknown[]) {
      if (broken.has(name)) return FAST_READ_UNAVAILABLE;
      return pool.query({ name: `mmx_${name}`, text: sqlText, values: params as unknown[] }).then(
        (r) => r.rows[0] as T | undefined,
        (err: unknown) => {
          if ((err as { code?: string }).code !== '0A000') throw err;
          broken.add(name);
          return FAST_READ_UNAVAILABLE;
        },
      );
    },
    close() {},
  };
}
