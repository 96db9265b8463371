// SQLite: the full-text table keeps, for each word, the columns it occurs in, not its positions
// (FTS5 detail=column). A search matches whole words, each on its own (message-query.ts ftsMatch
// quotes every word alone; searchWords splits text where FTS5's tokenizer does), so positions were
// never read, yet they were most of the index: ~2.5 KiB a 10 KB message against ~0.25 KiB, written
// to the WAL with every delivery. Ingest alone stores ~5 % more messages a second without them.
// (A phrase or NEAR query would need the positions back: FTS5 refuses them on this table.)
// A contentless table cannot be altered or rebuilt from itself: it is made again and refilled from
// the messages (what ingest indexes: folded subject, addresses, and body text or preview), in key
// order. PostgreSQL's tsvector keeps no positions we could drop this way: nothing to do there.
import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';
import { insertFtsRow, type StoredForSearch } from './fts-rows.ts';

/** Messages read and indexed per round of the refill. */
const BATCH = 500;

export async function migration013(db: Kysely<any>, dialect: Dialect): Promise<void> {
  if (dialect !== 'sqlite') return;
  await sql`DROP TABLE messages_fts`.execute(db);
  await sql`CREATE VIRTUAL TABLE messages_fts USING fts5(mbx, subject, addresses, body, content='', contentless_delete=1, detail=column, tokenize='unicode61 remove_diacritics 2')`.execute(db);
  type Row = StoredForSearch & { k: number | bigint };
  for (let after: number | bigint = -1; ; ) {
    const rows: Row[] = (
      await sql<Row>`
        SELECT m.rowid AS k, m.mailbox_id, m.subject, m.addresses, m.preview, c.text_body
        FROM messages m LEFT JOIN message_contents c ON c.rowid = m.rowid
        WHERE m.rowid > ${BigInt(after)} ORDER BY m.rowid LIMIT ${BATCH}`.execute(db)
    ).rows;
    if (rows.length === 0) break;
    for (const r of rows) await insertFtsRow(db, r.k, r);
    after = rows[rows.length - 1]!.k;
  }
}
