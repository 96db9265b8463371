// The store: the only module that knows about Kysely, better-sqlite3 and pg. It opens the
// configured backend, runs migrations and hands out repositories, inside or outside a transaction.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import { Migrator } from 'kysely/migration';
import pg from 'pg';
import { systemClock, type Clock } from '../core/clock.ts';
import type { Dialect } from './dialect.ts';
import type { Database } from './schema.ts';
import { migrationProvider } from './migrations/index.ts';
import type { BlobStore } from './blobs/blob-store.ts';
import { FsBlobStore } from './blobs/fs-blobs.ts';
import { PgBlobStore } from './blobs/pg-blobs.ts';
import type { RepoContext } from './repos/common.ts';
import { ChangesRepo } from './repos/changes.ts';
import { KeysRepo, TeamsRepo } from './repos/teams.ts';
import { DomainsRepo } from './repos/domains.ts';
import { MailboxesRepo } from './repos/mailboxes.ts';
import { FiltersRepo } from './repos/filters.ts';
import { IdempotencyRepo } from './repos/idempotency.ts';

export type { Dialect } from './dialect.ts';
export type { BlobStore, BlobRef } from './blobs/blob-store.ts';
export { isUniqueViolation } from './repos/common.ts';
export type { DomainRow } from './repos/domains.ts';
export type { MailboxRow } from './repos/mailboxes.ts';
export type { TeamRow, ApiKeyRow } from './repos/teams.ts';
export type { FilterSetRow } from './repos/filters.ts';
export type { IdempotencyRow } from './repos/idempotency.ts';

export interface Repos {
  teams: TeamsRepo;
  keys: KeysRepo;
  domains: DomainsRepo;
  mailboxes: MailboxesRepo;
  filters: FiltersRepo;
  idempotency: IdempotencyRepo;
  changes: ChangesRepo;
}

export interface Store extends Repos {
  readonly dialect: Dialect;
  readonly blobs: BlobStore;
  /** Runs fn in one database transaction; everything fn writes commits or rolls back together. */
  transaction<T>(fn: (tx: Repos) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface StoreOptions {
  /** postgres://… or null for SQLite. */
  databaseUrl: string | null;
  /** SQLite file and blob folder live here. */
  dataDir: string;
  /** PostgreSQL schema to use (tests isolate themselves this way). */
  pgSchema?: string;
  clock?: Clock;
}

function reposFor(ctx: RepoContext): Repos {
  return {
    teams: new TeamsRepo(ctx),
    keys: new KeysRepo(ctx),
    domains: new DomainsRepo(ctx),
    mailboxes: new MailboxesRepo(ctx),
    filters: new FiltersRepo(ctx),
    idempotency: new IdempotencyRepo(ctx),
    changes: new ChangesRepo(ctx),
  };
}

// int8 (bigint, bigserial, count(*)) as a JS number: every value we store fits in 2^53.
pg.types.setTypeParser(20, (v: string) => Number(v));

export async function openStore(options: StoreOptions): Promise<Store> {
  const clock = options.clock ?? systemClock;
  let db: Kysely<Database>;
  let dialect: Dialect;
  let blobs: BlobStore;
  if (options.databaseUrl) {
    dialect = 'postgres';
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: 10,
      ...(options.pgSchema ? { options: `-c search_path=${options.pgSchema}` } : {}),
    });
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    blobs = new PgBlobStore(db);
  } else {
    dialect = 'sqlite';
    mkdirSync(options.dataDir, { recursive: true });
    const file = new SqliteDatabase(join(options.dataDir, 'mailmux.sqlite'));
    file.pragma('journal_mode = WAL');
    // FULL: a commit is on disk before we answer (SMTP 250 promises durability).
    file.pragma('synchronous = FULL');
    file.pragma('busy_timeout = 5000');
    file.pragma('foreign_keys = ON');
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: file }) });
    blobs = new FsBlobStore(join(options.dataDir, 'blobs'));
  }

  const migrator = new Migrator({ db, provider: migrationProvider(dialect) });
  const { error } = await migrator.migrateToLatest();
  if (error) {
    await db.destroy();
    throw error instanceof Error ? error : new Error(String(error));
  }

  const repos = reposFor({ db, clock, dialect });
  return {
    ...repos,
    dialect,
    blobs,
    transaction: (fn) => db.transaction().execute((trx) => fn(reposFor({ db: trx, clock, dialect }))),
    close: () => db.destroy(),
  };
}
