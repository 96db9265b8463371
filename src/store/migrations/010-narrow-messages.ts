// Narrow message rows (issue 3, list pages of a 100,000-message mailbox): a list page reads 51
// index rows, and a messages row was ~3.5 KB (stored headers, IMAP structures, text and HTML
// bodies), so each row sat on overflow pages of its own. The large, immutable columns move to
// message_contents (1:1), read only by the endpoints that need them; the folders a message is in
// are kept on its row (messages.folder_ids, ids sorted, comma-separated, written with
// message_folders) so a page is one index range over small rows, with no second read.
// message_contents is keyed like messages: on SQLite by the same rowid (the search key of migration
// 009, about received order: a delivery appends to both tables and adds no index entry at a random
// place), on PostgreSQL by the message id.
// Existing data is converted: on SQLite the table is copied once in rowid order (rowids are kept);
// on PostgreSQL the columns are dropped and every row rewritten once (the new row versions leave
// the dropped values out).
import { sql, type Kysely } from 'kysely';
import { bigintType, type Dialect } from '../dialect.ts';

/** The columns that move, in message_contents' order. */
const MOVED = ['headers_text', 'references', 'headers', 'imap', 'text_body', 'html_body', 'auth_results'] as const;

export async function migration010(db: Kysely<any>, dialect: Dialect): Promise<void> {
  const table = db.schema.createTable('message_contents');
  // SQLite: `key` is the messages row's rowid (named: INTEGER PRIMARY KEY). Like the full-text
  // rows (migration 009), it follows the messages row's rowid, a declared column since migration 012.
  const keyed =
    dialect === 'sqlite'
      ? table.addColumn('key', 'integer', (c) => c.primaryKey()).addColumn('message_id', 'text', (c) => c.notNull())
      : table.addColumn('message_id', 'text', (c) => c.primaryKey());
  await keyed
    .addColumn('headers_text', 'text', (c) => c.notNull())
    .addColumn('references', 'text', (c) => c.notNull())
    .addColumn('headers', 'text', (c) => c.notNull())
    .addColumn('imap', 'text', (c) => c.notNull())
    .addColumn('text_body', 'text')
    .addColumn('html_body', 'text')
    .addColumn('auth_results', 'text')
    .execute();
  const moved = MOVED.map((c) => sql.ref(c));
  if (dialect === 'sqlite') await sql`INSERT INTO message_contents (rowid, message_id, ${sql.join(moved)}) SELECT rowid, id, ${sql.join(moved)} FROM messages ORDER BY rowid`.execute(db);
  else await sql`INSERT INTO message_contents (message_id, ${sql.join(moved)}) SELECT id, ${sql.join(moved)} FROM messages`.execute(db);
  if (dialect === 'sqlite') await narrowSqlite(db);
  else await narrowPostgres(db);
}

async function narrowSqlite(db: Kysely<any>): Promise<void> {
  const big = bigintType('sqlite');
  // messages as migration 002 made it, without the moved columns, with folder_ids.
  await db.schema
    .createTable('messages_narrow')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('mailbox_id', 'text', (c) => c.notNull())
    .addColumn('thread_id', 'text', (c) => c.notNull())
    .addColumn('blob_sha256', 'text', (c) => c.notNull())
    .addColumn('size_bytes', big, (c) => c.notNull())
    .addColumn('received_at', 'text', (c) => c.notNull())
    .addColumn('sent_at', 'text')
    .addColumn('sent_sort', 'text', (c) => c.notNull())
    .addColumn('subject', 'text')
    .addColumn('subject_sort', 'text', (c) => c.notNull())
    .addColumn('from_sort', 'text', (c) => c.notNull())
    .addColumn('to_sort', 'text', (c) => c.notNull())
    .addColumn('cc_text', 'text', (c) => c.notNull())
    .addColumn('bcc_text', 'text', (c) => c.notNull())
    .addColumn('addresses', 'text', (c) => c.notNull())
    .addColumn('preview', 'text')
    .addColumn('has_attachments', 'integer', (c) => c.notNull())
    .addColumn('attachments', 'text', (c) => c.notNull())
    .addColumn('rfc_message_id', 'text')
    .addColumn('in_reply_to', 'text')
    .addColumn('is_spam', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('spam_score', 'real')
    .addColumn('keywords', 'text', (c) => c.notNull())
    .addColumn('seen', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('flagged', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('answered', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('draft', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('modseq', big, (c) => c.notNull().defaultTo(0))
    .addColumn('folder_ids', 'text', (c) => c.notNull().defaultTo(''))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  const indexes = (await sql<{ sql: string }>`SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages' AND sql IS NOT NULL`.execute(db)).rows.map((r) => r.sql);
  const kept = (await sql<{ name: string }>`SELECT name FROM pragma_table_info('messages_narrow')`.execute(db)).rows.map((r) => r.name).filter((c) => c !== 'folder_ids');
  const cols = kept.map((c) => sql.ref(c));
  // Rowids kept (the search keys), rows written in key order (sequential pages).
  await sql`INSERT INTO messages_narrow (rowid, ${sql.join(cols)}, folder_ids)
    SELECT m.rowid, ${sql.join(kept.map((c) => sql`m.${sql.ref(c)}`))},
      coalesce((SELECT group_concat(x.folder_id, ',') FROM (SELECT mf.folder_id FROM message_folders mf WHERE mf.message_id = m.id ORDER BY mf.folder_id) x), '')
    FROM messages m ORDER BY m.rowid`.execute(db);
  await sql`DROP TABLE messages`.execute(db);
  await sql`ALTER TABLE messages_narrow RENAME TO messages`.execute(db);
  for (const ddl of indexes) await sql.raw(ddl).execute(db);
}

async function narrowPostgres(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE messages ADD COLUMN folder_ids text NOT NULL DEFAULT ''`.execute(db);
  for (const c of MOVED) await sql`ALTER TABLE messages DROP COLUMN ${sql.ref(c)}`.execute(db);
  // Every row rewritten once: the new versions carry folder_ids and no longer the dropped values
  // (a dropped column's data otherwise stays in each row until the row is next written).
  await sql`UPDATE messages SET folder_ids = coalesce((SELECT string_agg(mf.folder_id, ',' ORDER BY mf.folder_id COLLATE "C") FROM message_folders mf WHERE mf.message_id = messages.id), '')`.execute(db);
  await sql`ANALYZE messages, message_contents`.execute(db);
}
