// Query speed for large mailboxes (issue 3, a mailbox of 100,000 messages):
// - counters kept by every write instead of count(*): per folder (total, unread), per mailbox
//   (mailbox_message_counts), per thread (messages, unread, with attachments) and the folders a
//   thread's messages are in (thread_folders, a count per folder);
// - SQLite: a message's rowid follows its received_at (searchKey below), and the full-text table,
//   keyed by that rowid, also holds the mailbox: a search reads its matches newest first and stops
//   after one page instead of sorting every match.
// Existing data is converted: counters are computed once, and on SQLite the rows are re-keyed and
// the full-text index rebuilt from the stored text (the same text ingest indexes).
import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';
import { searchKeyFloor } from '../repos/message-query.ts';
import { insertFtsRow } from './fts-rows.ts';
/** Rows converted per statement batch on SQLite. */
const BATCH = 500;

export async function migration009(db: Kysely<any>, dialect: Dialect): Promise<void> {
  for (const col of ['total_messages', 'unread_messages']) {
    await db.schema.alterTable('folders').addColumn(col, 'integer', (c) => c.notNull().defaultTo(0)).execute();
  }
  for (const col of ['message_count', 'unread_count', 'attachment_count']) {
    await db.schema.alterTable('threads').addColumn(col, 'integer', (c) => c.notNull().defaultTo(0)).execute();
  }
  await db.schema
    .createTable('mailbox_message_counts')
    .addColumn('mailbox_id', 'text', (c) => c.primaryKey())
    .addColumn('total', 'integer', (c) => c.notNull())
    .addColumn('unread', 'integer', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('thread_folders')
    .addColumn('thread_id', 'text', (c) => c.notNull())
    .addColumn('folder_id', 'text', (c) => c.notNull())
    .addColumn('mailbox_id', 'text', (c) => c.notNull())
    .addColumn('n', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('thread_folders_pk', ['thread_id', 'folder_id'])
    .execute();
  await db.schema.createIndex('thread_folders_mailbox_idx').on('thread_folders').column('mailbox_id').execute();

  await sql`UPDATE folders SET
      total_messages = (SELECT count(*) FROM message_folders mf WHERE mf.folder_id = folders.id),
      unread_messages = (SELECT count(*) FROM message_folders mf WHERE mf.folder_id = folders.id AND mf.seen = 0)`.execute(db);
  await sql`UPDATE threads SET
      message_count = (SELECT count(*) FROM messages m WHERE m.thread_id = threads.id),
      unread_count = (SELECT count(*) FROM messages m WHERE m.thread_id = threads.id AND m.seen = 0),
      attachment_count = (SELECT count(*) FROM messages m WHERE m.thread_id = threads.id AND m.has_attachments = 1)`.execute(db);
  await sql`INSERT INTO mailbox_message_counts (mailbox_id, total, unread)
      SELECT mailbox_id, count(*), sum(CASE WHEN seen = 0 THEN 1 ELSE 0 END) FROM messages GROUP BY mailbox_id`.execute(db);
  await sql`INSERT INTO thread_folders (thread_id, folder_id, mailbox_id, n)
      SELECT m.thread_id, mf.folder_id, m.mailbox_id, count(*) FROM message_folders mf JOIN messages m ON m.id = mf.message_id
      GROUP BY m.thread_id, mf.folder_id, m.mailbox_id`.execute(db);

  if (dialect === 'sqlite') await rekeySqlite(db);
  // Fresh statistics for the planner: without them the filled tables look empty until autovacuum.
  else {
    await sql`ANALYZE folders, threads, mailbox_message_counts, thread_folders`.execute(db);
    // GIN's pending list (fastupdate) is read in full by every search until it is merged: at the 4 MB
    // default a search for a rare word took 33 ms on the 100,000-message bench mailbox. A smaller
    // list is merged more often, in smaller steps, by the inserts.
    await sql`ALTER INDEX messages_search_gin SET (gin_pending_list_limit = 256)`.execute(db);
  }
}

/**
 * Gives every message its search key as rowid and rebuilds the full-text table on those keys. The
 * table is copied once in key order (sequential writes), not updated row by row: on the
 * 100,000-message (1.2 GB) bench database, updating rowids in place took 400 s.
 */
async function rekeySqlite(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE messages_fts`.execute(db);
  await sql`CREATE VIRTUAL TABLE messages_fts USING fts5(mbx, subject, addresses, body, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2')`.execute(db);
  // Keys in received order (a list of small tuples, read once). Bound as integers: a JS number is bound as a float.
  const order = (await sql<{ rowid: number; received_at: string }>`SELECT rowid, received_at FROM messages ORDER BY received_at, id`.execute(db)).rows;
  await sql`CREATE TEMP TABLE message_rekey (old INTEGER PRIMARY KEY, key INTEGER NOT NULL)`.execute(db);
  let lastKey = -1;
  for (let i = 0; i < order.length; i += BATCH) {
    const values = order.slice(i, i + BATCH).map((r) => {
      lastKey = Math.max(searchKeyFloor(r.received_at), lastKey + 1);
      return sql`(${BigInt(r.rowid)}, ${BigInt(lastKey)})`;
    });
    await sql`INSERT INTO message_rekey (old, key) VALUES ${sql.join(values)}`.execute(db);
  }
  const table = (await sql<{ sql: string }>`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'messages'`.execute(db)).rows[0]!.sql;
  const indexes = (await sql<{ sql: string }>`SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages' AND sql IS NOT NULL`.execute(db)).rows.map((r) => r.sql);
  const columns = (await sql<{ name: string }>`SELECT name FROM pragma_table_info('messages')`.execute(db)).rows.map((r) => sql.ref(r.name));
  await sql.raw(table.replace(/^CREATE TABLE\s+("?)messages\1/i, 'CREATE TABLE messages_rekeyed')).execute(db);
  await sql`INSERT INTO messages_rekeyed (rowid, ${sql.join(columns)})
    SELECT r.key, ${sql.join(columns.map((c) => sql`m.${c}`))} FROM message_rekey r JOIN messages m ON m.rowid = r.old ORDER BY r.key`.execute(db);
  await sql`DROP TABLE messages`.execute(db);
  await sql`ALTER TABLE messages_rekeyed RENAME TO messages`.execute(db);
  for (const ddl of indexes) await sql.raw(ddl).execute(db);
  await sql`DROP TABLE message_rekey`.execute(db);

  for (let after = -1; ; ) {
    const rows = (
      await sql<{ rowid: number; mailbox_id: string; subject: string | null; addresses: string; text_body: string | null; preview: string | null }>`
        SELECT rowid, mailbox_id, subject, addresses, text_body, preview FROM messages WHERE rowid > ${BigInt(after)} ORDER BY rowid LIMIT ${BATCH}`.execute(db)
    ).rows;
    if (rows.length === 0) break;
    for (const r of rows) await insertFtsRow(db, r.rowid, r);
    after = rows[rows.length - 1]!.rowid;
  }
}
