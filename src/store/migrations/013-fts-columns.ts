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
import { foldForSearch, mailboxSearchToken } from '../repos/message-query.ts';

/** Messages read and indexed per round of the refill. */
const BATCH = 500;
/** Body text indexed per message, as ingest indexes it (services/mail/ingest.ts FTS_BODY_MAX_CHARS). */
const FTS_BODY_MAX_CHARS = 200_000;

interface Address {
  name: string | null;
  email: string;
}

export async function migration013(db: Kysely<any>, dialect: Dialect): Promise<void> {
  if (dialect !== 'sqlite') return;
  await sql`DROP TABLE messages_fts`.execute(db);
  await sql`CREATE VIRTUAL TABLE messages_fts USING fts5(mbx, subject, addresses, body, content='', contentless_delete=1, detail=column, tokenize='unicode61 remove_diacritics 2')`.execute(db);
  type Row = { k: number | bigint; mailbox_id: string; subject: string | null; addresses: string; preview: string | null; text_body: string | null };
  for (let after: number | bigint = -1; ; ) {
    const rows: Row[] = (
      await sql<Row>`
        SELECT m.rowid AS k, m.mailbox_id, m.subject, m.addresses, m.preview, c.text_body
        FROM messages m LEFT JOIN message_contents c ON c.rowid = m.rowid
        WHERE m.rowid > ${BigInt(after)} ORDER BY m.rowid LIMIT ${BATCH}`.execute(db)
    ).rows;
    if (rows.length === 0) break;
    for (const r of rows) {
      const a = JSON.parse(r.addresses) as Record<string, Address | Address[] | null | undefined>;
      const list = [a.from, a.to, a.cc, a.bcc, a.reply_to].flatMap((x) => (x === null || x === undefined ? [] : Array.isArray(x) ? x : [x]));
      const addresses = list.map((x) => `${x.name ?? ''} ${x.email}`).join(' ');
      const body = (r.text_body ?? r.preview ?? '').slice(0, FTS_BODY_MAX_CHARS);
      await sql`INSERT INTO messages_fts(rowid, mbx, subject, addresses, body) VALUES (${BigInt(r.k)}, ${mailboxSearchToken(r.mailbox_id)}, ${foldForSearch(r.subject ?? '')}, ${foldForSearch(addresses)}, ${foldForSearch(body)})`.execute(db);
    }
    after = rows[rows.length - 1]!.k;
  }
}
