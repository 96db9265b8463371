// A stored message's full-text row, as ingest writes it (services/mail/ingest.ts prepareMessage):
// the mailbox token, and the folded subject, addresses (name and address of From, To, Cc, Bcc and
// Reply-To) and body text (or preview). Migrations that rebuild the SQLite full-text table (009,
// 013) write the rows of messages already stored with it.
import { sql, type Kysely } from 'kysely';
import { foldForSearch, mailboxSearchToken } from '../repos/message-query.ts';

/** The body text indexed per message (services/mail/ingest.ts FTS_BODY_MAX_CHARS). */
const FTS_BODY_MAX_CHARS = 200_000;

interface Address {
  name: string | null;
  email: string;
}

export interface StoredForSearch {
  mailbox_id: string;
  subject: string | null;
  /** messages.addresses: the JSON of from, sender, to, cc, bcc, reply_to. */
  addresses: string;
  text_body: string | null;
  preview: string | null;
}

/** Writes the full-text row of a stored message under its key (the messages rowid). */
export async function insertFtsRow(db: Kysely<any>, key: number | bigint, r: StoredForSearch): Promise<void> {
  const a = JSON.parse(r.addresses) as Record<string, Address | Address[] | null | undefined>;
  const list = [a.from, a.to, a.cc, a.bcc, a.reply_to].flatMap((x) => (x === null || x === undefined ? [] : Array.isArray(x) ? x : [x]));
  const addresses = list.map((x) => `${x.name ?? ''} ${x.email}`).join(' ');
  const body = (r.text_body ?? r.preview ?? '').slice(0, FTS_BODY_MAX_CHARS);
  await sql`INSERT INTO messages_fts(rowid, mbx, subject, addresses, body) VALUES (${BigInt(key)}, ${mailboxSearchToken(r.mailbox_id)}, ${foldForSearch(r.subject ?? '')}, ${foldForSearch(addresses)}, ${foldForSearch(body)})`.execute(db);
}
