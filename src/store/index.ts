// The store: the only module that knows about Kysely, better-sqlite3 and pg. It opens the
// configured backend, runs migrations and hands out repositories, inside or outside a transaction.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, PostgresDialect, sql, type DatabaseIntrospector, type PostgresPool, type PostgresPoolClient, type SchemaMetadata, type TableMetadata } from 'kysely';
import { Migrator } from 'kysely/migration';
import pg from 'pg';
import { systemClock, type Clock } from '../core/clock.ts';
import type { Dialect } from './dialect.ts';
import type { Database } from './schema.ts';
import { migrationProvider } from './migrations/index.ts';
import type { BlobStore } from './blobs/blob-store.ts';
import { FsBlobStore } from './blobs/fs-blobs.ts';
import { PgBlobStore } from './blobs/pg-blobs.ts';
import { takeWriteOrderLock, type RepoContext } from './repos/common.ts';
import { preparedName, setTransactionRunner } from './repos/compiled.ts';
import { pgFastRead, sqliteFastRead, type FastRead } from './fast-read.ts';
import { ChangesRepo } from './repos/changes.ts';
import { KeysRepo, TeamsRepo } from './repos/teams.ts';
import { DomainsRepo } from './repos/domains.ts';
import { MailboxesRepo } from './repos/mailboxes.ts';
import { FiltersRepo } from './repos/filters.ts';
import { IdempotencyRepo } from './repos/idempotency.ts';
import { FoldersRepo } from './repos/folders.ts';
import { ThreadsRepo } from './repos/threads.ts';
import { MessagesRepo } from './repos/messages.ts';
import { MessageQuery } from './repos/message-query.ts';
import { IdentitiesRepo } from './repos/identities.ts';
import { IncomingLogsRepo } from './repos/incoming-logs.ts';
import { SettingsRepo } from './repos/settings.ts';
import { EventsRepo } from './repos/events.ts';
import { WebhooksRepo } from './repos/webhooks.ts';
import { UploadsRepo } from './repos/uploads.ts';
import { SubmissionsRepo } from './repos/submissions.ts';
import { OutboundRepo } from './repos/outbound.ts';
import { ProvidersRepo } from './repos/providers.ts';
import { DeliveryLogsRepo } from './repos/delivery-logs.ts';
import { BlobRowsRepo } from './repos/blob-rows.ts';
import { GroupCommitSqliteDialect, type SideWriter } from './sqlite/group-commit.ts';
import { useSqliteVfs, type SqliteVfs } from './sqlite/vfs.ts';

export type { Dialect } from './dialect.ts';
export { WalFlusher, type SideWriter } from './sqlite/group-commit.ts';
export type { BlobStore, BlobRef, StagedBlob } from './blobs/blob-store.ts';
export { isUniqueViolation } from './repos/common.ts';
export type { ChangeEntry } from './repos/changes.ts';
export type { DomainRow } from './repos/domains.ts';
export type { MailboxRow } from './repos/mailboxes.ts';
export type { TeamRow, ApiKeyRow, AuthKeyRow, MailboxViewRow } from './repos/teams.ts';
export type { FilterSetRow } from './repos/filters.ts';
export type { IdempotencyRow } from './repos/idempotency.ts';
export type { FolderRow } from './repos/folders.ts';
export type { ThreadRow } from './repos/threads.ts';
export type { MessageRow, MessageInsert } from './repos/messages.ts';
export type { ListColumns, MessageFilter, MessageSort, SortBy } from './repos/message-query.ts';
export { sortValue, searchWords, SORT_COLUMNS } from './repos/message-query.ts';
export type { IdentityRow } from './repos/identities.ts';
export type { UploadRow, UploadIntentRow } from './repos/uploads.ts';
export type { IncomingLogRow, IncomingLogQuery } from './repos/incoming-logs.ts';
export type { EventRow, EventInsert } from './repos/events.ts';
export type { SubmissionRow, SubmissionMeta, SubmissionQuery } from './repos/submissions.ts';
export type { OutboundRecipientRow, OutboundRecipientInsert, OutboundOutcome } from './repos/outbound.ts';
export type { ProviderRow } from './repos/providers.ts';
export type { DeliveryLogRow, DeliveryLogQuery, MetricsBucket } from './repos/delivery-logs.ts';
export type { WebhookRow, WebhookDeliveryRow, WebhookDeliveryInsert, WebhookAttemptRow, WebhookAttemptListRow } from './repos/webhooks.ts';

export interface Repos {
  teams: TeamsRepo;
  keys: KeysRepo;
  domains: DomainsRepo;
  mailboxes: MailboxesRepo;
  filters: FiltersRepo;
  idempotency: IdempotencyRepo;
  changes: ChangesRepo;
  folders: FoldersRepo;
  threads: ThreadsRepo;
  messages: MessagesRepo;
  messageQuery: MessageQuery;
  identities: IdentitiesRepo;
  incomingLogs: IncomingLogsRepo;
  settings: SettingsRepo;
  events: EventsRepo;
  webhooks: WebhooksRepo;
  uploads: UploadsRepo;
  submissions: SubmissionsRepo;
  outbound: OutboundRepo;
  providers: ProvidersRepo;
  deliveryLogs: DeliveryLogsRepo;
  /** Blobs the database keeps, written with the rows that refer to them (StagedBlob.inline). */
  blobRows: BlobRowsRepo;
  /**
   * Runs fn after the enclosing transaction commits (never if it rolls back); outside a
   * transaction, at once. Publishing events and waking workers hang off this.
   */
  afterCommit(fn: () => void): void;
  /**
   * SQLite: runs fn once the enclosing transaction's COMMIT has run, before it is durable (the WAL
   * is flushed after); never if it rolls back. PostgreSQL, and outside a transaction: at once.
   * Nothing may be acknowledged from here: it hands the writer on to the next batch.
   */
  afterWrite(fn: () => void): void;
}

export interface Store extends Repos {
  readonly dialect: Dialect;
  readonly blobs: BlobStore;
  /** Runs fn in one database transaction; everything fn writes commits or rolls back together. */
  transaction<T>(fn: (tx: Repos) => Promise<T>): Promise<T>;
  /**
   * SQLite: the write gate for a writer on another connection of this process to the same file
   * (the ingest writer thread): while it holds the gate, this store's connection writes nothing,
   * and its commits count towards checkpoints. Null on PostgreSQL, whose connections need none of
   * this.
   */
  readonly sideWriter: SideWriter | null;
  /** SQLite: the VFS its connections use, and why not the mailmux one when it is not; null on PostgreSQL. */
  readonly sqliteVfs: { vfs: SqliteVfs; reason: string | null } | null;
  /** Tells every process sharing the database that events were committed (PostgreSQL NOTIFY; a no-op on SQLite). */
  notifyEvents(): Promise<void>;
  /** Calls fn when another process commits events; returns the unsubscribe. */
  listenEvents(fn: () => void): Promise<() => Promise<void>>;
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
  /**
   * SQLite: this store is the ingest writer thread's second connection to a database the process's
   * main store has opened: it runs no migrations (the main store has) and no checkpoints (the main
   * store's connection does, counting this one's commits through sideWriter). Its commits resolve
   * at COMMIT, before they are durable: another thread flushes the WAL (app/ingest-flusher-worker.ts)
   * before anything they wrote is acknowledged.
   */
  writerThread?: boolean;
  /** SQLite: the VFS for this process's connections (sqlite/vfs.ts); default `mailmux`. */
  sqliteVfs?: SqliteVfs;
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
    folders: new FoldersRepo(ctx),
    threads: new ThreadsRepo(ctx),
    messages: new MessagesRepo(ctx),
    messageQuery: new MessageQuery(ctx),
    identities: new IdentitiesRepo(ctx),
    incomingLogs: new IncomingLogsRepo(ctx),
    settings: new SettingsRepo(ctx),
    events: new EventsRepo(ctx),
    webhooks: new WebhooksRepo(ctx),
    uploads: new UploadsRepo(ctx),
    submissions: new SubmissionsRepo(ctx),
    outbound: new OutboundRepo(ctx),
    providers: new ProvidersRepo(ctx),
    deliveryLogs: new DeliveryLogsRepo(ctx),
    blobRows: new BlobRowsRepo(ctx),
    afterCommit: ctx.afterCommit ?? ((fn) => fn()),
    afterWrite: ctx.afterWrite ?? ((fn) => fn()),
  };
}

/**
 * A dedicated connection that LISTENs on `channel`; reconnects after errors (each reconnect calls
 * fn once, since notifications may have been missed meanwhile).
 */
async function listenPg(url: string, schema: string | undefined, channel: string, fn: () => void): Promise<() => Promise<void>> {
  let client: pg.Client | null = null;
  let closed = false;
  let retry: NodeJS.Timeout | null = null;
  const reconnect = (): void => {
    retry = setTimeout(() => void connect().then(fn, reconnect), 1000);
    retry.unref();
  };
  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: url, ...(schema ? { options: `-c search_path=${schema}` } : {}) });
    c.on('notification', () => fn());
    c.on('error', () => {
      if (closed) return;
      client = null;
      void c.end().catch(() => undefined);
      reconnect();
    });
    await c.connect();
    await c.query(`LISTEN "${channel}"`);
    if (closed) {
      await c.end();
      return;
    }
    client = c;
  };
  await connect();
  return async () => {
    closed = true;
    if (retry) clearTimeout(retry);
    await client?.end().catch(() => undefined);
  };
}

/** Prepared statements kept per SQL text (Kysely prepares on every query; preparing costs more than running). */
const STATEMENT_CACHE_MAX = 1000;

/**
 * better-sqlite3 with a statement cache in front of prepare(). Safe because Kysely runs one query
 * at a time on the single connection and never leaves an iterator open (no streaming queries).
 */
function withStatementCache(file: SqliteDatabase.Database): { close(): void; prepare(sql: string): SqliteDatabase.Statement } {
  const cache = new Map<string, SqliteDatabase.Statement>();
  return {
    close: () => file.close(),
    prepare(sqlText: string) {
      let stmt = cache.get(sqlText);
      if (!stmt) {
        stmt = file.prepare(sqlText);
        if (cache.size >= STATEMENT_CACHE_MAX) cache.delete(cache.keys().next().value as string);
        cache.set(sqlText, stmt);
      }
      return stmt;
    },
  };
}

// int8 (bigint, bigserial, count(*)) as a JS number: every value we store fits in 2^53.
pg.types.setTypeParser(20, (v: string) => Number(v));

// Kysely's PostgreSQL introspector reads the columns of every table in every schema of the
// database, and resolves each table by name as it goes: a schema dropped by someone else while it
// runs makes it fail ("relation … does not exist"), and it is slow in a database shared by many
// schemas. The Migrator only asks whether its own two tables exist, so ours looks at the current
// schema alone.
class CurrentSchemaIntrospector implements DatabaseIntrospector {
  readonly #db: Kysely<any>;
  constructor(db: Kysely<any>) {
    this.#db = db;
  }
  async getSchemas(): Promise<SchemaMetadata[]> {
    const { rows } = await sql<{ name: string }>`select current_schema() as name`.execute(this.#db);
    return rows.filter((r) => r.name).map((r) => ({ name: r.name }));
  }
  async getTables(): Promise<TableMetadata[]> {
    const { rows } = await sql<{ name: string; schema: string; kind: string }>`
      select c.relname as name, ns.nspname as schema, c.relkind as kind
        from pg_catalog.pg_class c join pg_catalog.pg_namespace ns on ns.oid = c.relnamespace
       where ns.nspname = current_schema() and c.relkind in ('r', 'v', 'p', 'f')`.execute(this.#db);
    return rows.map((r) => ({ name: r.name, schema: r.schema, isView: r.kind === 'v', isForeign: r.kind === 'f', columns: [] }));
  }
  async getMetadata(): Promise<{ tables: TableMetadata[] }> {
    return { tables: await this.getTables() };
  }
}

/**
 * The pool Kysely gets: its clients run the compiled statements of repos/compiled.ts (the hot ones:
 * ingest's writes, list pages, change-log appends) as named prepared statements, so PostgreSQL
 * parses each once per connection and may keep its plan. Every other text runs as before. A
 * statement's plan is invalidated by PostgreSQL when the tables it reads change (migrations).
 */
function preparingPool(pool: pg.Pool): PostgresPool {
  const wrapped = new WeakMap<pg.PoolClient, PostgresPoolClient>();
  const wrap = (client: pg.PoolClient): PostgresPoolClient => {
    let w = wrapped.get(client);
    if (!w) {
      const query = (text: unknown, values?: unknown[]): unknown => {
        const name = typeof text === 'string' ? preparedName(text) : undefined;
        return name !== undefined ? client.query({ name, text: text as string, values: values ?? [] }) : client.query(text as string, values);
      };
      w = { query: query as PostgresPoolClient['query'], release: (destroy?: boolean) => client.release(destroy) };
      wrapped.set(client, w);
    }
    return w;
  };
  return { options: pool.options, connect: async () => wrap(await pool.connect()), end: () => pool.end() };
}

class CurrentSchemaPostgresDialect extends PostgresDialect {
  override createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new CurrentSchemaIntrospector(db);
  }
}

/** The SQLite database file of a data folder (its WAL is this path + `-wal`). */
export function sqliteDatabasePath(dataDir: string): string {
  return join(dataDir, 'mailmux.sqlite');
}

export async function openStore(options: StoreOptions): Promise<Store> {
  const clock = options.clock ?? systemClock;
  let db: Kysely<Database>;
  let dialect: Dialect;
  let blobs: BlobStore;
  let fast: FastRead;
  let sqliteDialect: GroupCommitSqliteDialect | null = null;
  let sqliteVfs: Store['sqliteVfs'] = null;
  if (options.databaseUrl) {
    dialect = 'postgres';
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: 10,
      ...(options.pgSchema ? { options: `-c search_path=${options.pgSchema}` } : {}),
    });
    db = new Kysely<Database>({ dialect: new CurrentSchemaPostgresDialect({ pool: preparingPool(pool) }) });
    fast = pgFastRead(pool);
    blobs = new PgBlobStore(db);
  } else {
    dialect = 'sqlite';
    mkdirSync(options.dataDir, { recursive: true });
    sqliteVfs = useSqliteVfs(options.sqliteVfs ?? 'mailmux');
    const file = new SqliteDatabase(sqliteDatabasePath(options.dataDir));
    file.pragma('journal_mode = WAL');
    // NORMAL, with the WAL flushed by the driver before a commit resolves: a commit is on disk
    // before we answer (SMTP 250 promises durability), and concurrent commits share one flush.
    file.pragma('synchronous = NORMAL');
    file.pragma('busy_timeout = 5000');
    file.pragma('foreign_keys = ON');
    sqliteDialect = new GroupCommitSqliteDialect(withStatementCache(file), file.name, { checkpoints: !options.writerThread, flushes: !options.writerThread });
    db = new Kysely<Database>({ dialect: sqliteDialect });
    fast = sqliteFastRead(file);
    blobs = new FsBlobStore(join(options.dataDir, 'blobs'), db);
  }

  let schemaName = 'main';
  // The writer thread's store opens a database the main store has migrated already.
  if (!options.writerThread) {
    try {
      // Kysely looks for its migration tables in every schema of the database unless told which one:
      // name ours, or a second Mailmux schema in the same database would skip creating them.
      const migrationTableSchema = dialect === 'postgres' ? (await sql<{ s: string | null }>`select current_schema() as s`.execute(db)).rows[0]?.s : undefined;
      if (migrationTableSchema) schemaName = migrationTableSchema;
      const migrator = new Migrator({ db, provider: migrationProvider(dialect), ...(migrationTableSchema ? { migrationTableSchema } : {}) });
      const { error } = await migrator.migrateToLatest();
      if (error) throw error instanceof Error ? error : new Error(String(error));
    } catch (err) {
      await db.destroy();
      throw err;
    }
  }

  const repos = reposFor({ db, clock, dialect, fast });
  // One channel per schema: test schemas sharing a database do not wake each other.
  const eventsChannel = `mailmux_events_${schemaName}`;
  return {
    ...repos,
    dialect,
    blobs,
    sideWriter: sqliteDialect ? sqliteDialect.driver!.side : null,
    sqliteVfs,
    transaction: async (fn) => {
      const hooks: (() => void)[] = [];
      const written: (() => void)[] = [];
      const afterWrite = (): void => {
        for (const w of written) w();
      };
      const result = await db.transaction().execute(async (trx) => {
        // PostgreSQL: at once. Its next writer takes another connection and queues behind this
        // transaction's write-order lock, so the hand-over need not wait for the COMMIT.
        const beforeCommit: (() => Promise<void>)[] = [];
        const ctx: RepoContext = {
          db: trx,
          clock,
          dialect,
          inTransaction: true,
          afterCommit: (f) => hooks.push(f),
          afterWrite: sqliteDialect ? (f) => written.push(f) : (f) => f(),
          ...(sqliteDialect ? { beforeCommit: (f: () => Promise<void>) => void beforeCommit.push(f) } : {}),
        };
        // On PostgreSQL the write-order lock is the transaction's first statement, before any row
        // lock: taken later (at the first log append) it could deadlock against a transaction that
        // locked a row first and then waits for it.
        await takeWriteOrderLock(trx, dialect);
        // SQLite: the hot statements (compiled.ts) run directly on the connection this transaction
        // holds, until fn is done.
        const runner = sqliteDialect?.driver!.transactionRunner() ?? null;
        if (runner) setTransactionRunner(trx, runner);
        let out: Awaited<ReturnType<typeof fn>>;
        try {
          out = await fn(reposFor(ctx));
          for (let i = 0; i < beforeCommit.length; i++) await beforeCommit[i]!();
        } finally {
          if (runner) setTransactionRunner(trx, null);
        }
        // SQLite: the driver calls it between COMMIT and the flush (the connection is ours until then).
        if (sqliteDialect && written.length > 0) sqliteDialect.driver!.onCommitted(afterWrite);
        return out;
      });
      for (const h of hooks) {
        try {
          h();
        } catch {
          // A hook's failure must not turn a committed write into an error for the caller.
        }
      }
      return result;
    },
    notifyEvents: async () => {
      if (dialect === 'postgres') await sql`select pg_notify(${eventsChannel}, '')`.execute(db);
    },
    listenEvents: async (fn) => (dialect === 'postgres' && options.databaseUrl ? listenPg(options.databaseUrl, options.pgSchema, eventsChannel, fn) : async () => undefined),
    close: () => {
      fast.close();
      return db.destroy();
    },
  };
}
