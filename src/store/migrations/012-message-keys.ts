// SQLite: a message's rowid is its search key (migration 009) and keys its full-text row (009) and
// its message_contents row (010). A rowid that is not a declared column is not part of the row's
// values: sqlite3's .dump writes the rows without it, and the restore numbers them 1, 2, 3..., so
// every message would be joined to another message's body and full-text entry, or to none (VACUUM
// may renumber such rowids too; SQLite's documentation allows it). Here the rowid becomes a
// declared column, `key` INTEGER PRIMARY KEY (an alias of the rowid, so every query and insert
// that names messages.rowid is unchanged), and every copy of the rows keeps it. The id stays
// unique and not null; only its index is now a UNIQUE one instead of the primary key's.
// The table is copied once in key order, as migration 010 did. PostgreSQL keys its contents by
// message id and keeps the search vector on the row: nothing to do there.
import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';

/** The head of the messages table as migration 010 left it (SQLite's stored text of it). */
const HEAD = /^CREATE TABLE (?:IF NOT EXISTS )?"messages" \("id" text primary key, /i;

export async function migration012(db: Kysely<any>, dialect: Dialect): Promise<void> {
  if (dialect !== 'sqlite') return;
  const table = (await sql<{ sql: string }>`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'messages'`.execute(db)).rows[0]?.sql ?? '';
  if (!HEAD.test(table)) throw new Error(`migration 012: the messages table is not the one migration 010 made: ${table.slice(0, 120)}`);
  const indexes = (await sql<{ sql: string }>`SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages' AND sql IS NOT NULL`.execute(db)).rows.map((r) => r.sql);
  const columns = (await sql<{ name: string }>`SELECT name FROM pragma_table_info('messages')`.execute(db)).rows.map((r) => sql.ref(r.name));
  await sql.raw(table.replace(HEAD, 'CREATE TABLE "messages_keyed" ("key" integer primary key, "id" text not null unique, ')).execute(db);
  await sql`INSERT INTO messages_keyed ("key", ${sql.join(columns)}) SELECT rowid, ${sql.join(columns)} FROM messages ORDER BY rowid`.execute(db);
  await sql`DROP TABLE messages`.execute(db);
  await sql`ALTER TABLE messages_keyed RENAME TO messages`.execute(db);
  for (const ddl of indexes) await sql.raw(ddl).execute(db);
}
