// Mail: folders (JMAP Mailbox, with IMAP UID counters), threads, messages (the parsed index of a
// raw blob, with precomputed IMAP structures), folder membership with per-folder UIDs, keywords,
// identities, incoming logs, and full-text search (SQLite FTS5, PostgreSQL tsvector + GIN).
import { sql, type Kysely } from 'kysely';
import { bigintType, type Dialect } from '../dialect.ts';

export async function migration002(db: Kysely<any>, dialect: Dialect): Promise<void> {
  const big = bigintType(dialect);

  await db.schema
    .createTable('folders')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('mailbox_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('role', 'text')
    .addColumn('parent_id', 'text')
    .addColumn('sort_order', 'integer')
    .addColumn('next_uid', big, (c) => c.notNull().defaultTo(1))
    .addColumn('uid_validity', big, (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('folders_mailbox_idx').on('folders').columns(['mailbox_id', 'sort_order', 'name']).execute();
  await db.schema.createIndex('folders_mailbox_role_uq').on('folders').columns(['mailbox_id', 'role']).unique().where(sql.ref('role'), 'is not', null).execute();

  await db.schema
    .createTable('threads')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('mailbox_id', 'text', (c) => c.notNull())
    .addColumn('subject_key', 'text', (c) => c.notNull())
    .addColumn('subject', 'text')
    .addColumn('last_received_at', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('threads_mailbox_last_idx').on('threads').columns(['mailbox_id', 'last_received_at', 'id']).execute();
  await db.schema.createIndex('threads_mailbox_subject_idx').on('threads').columns(['mailbox_id', 'subject_key', 'last_received_at']).execute();

  await db.schema
    .createTable('messages')
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
    .addColumn('headers_text', 'text', (c) => c.notNull())
    .addColumn('addresses', 'text', (c) => c.notNull())
    .addColumn('preview', 'text')
    .addColumn('has_attachments', 'integer', (c) => c.notNull())
    .addColumn('attachments', 'text', (c) => c.notNull())
    .addColumn('rfc_message_id', 'text')
    .addColumn('in_reply_to', 'text')
    .addColumn('references', 'text', (c) => c.notNull())
    .addColumn('headers', 'text', (c) => c.notNull())
    .addColumn('imap', 'text', (c) => c.notNull())
    .addColumn('text_body', 'text')
    .addColumn('html_body', 'text')
    .addColumn('is_spam', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('spam_score', 'real')
    .addColumn('auth_results', 'text')
    .addColumn('keywords', 'text', (c) => c.notNull())
    .addColumn('seen', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('flagged', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('answered', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('draft', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('modseq', big, (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  for (const [name, cols] of [
    ['messages_mailbox_received_idx', ['mailbox_id', 'received_at', 'id']],
    ['messages_mailbox_sent_idx', ['mailbox_id', 'sent_sort', 'id']],
    ['messages_mailbox_subject_idx', ['mailbox_id', 'subject_sort', 'id']],
    ['messages_mailbox_from_idx', ['mailbox_id', 'from_sort', 'id']],
    ['messages_mailbox_size_idx', ['mailbox_id', 'size_bytes', 'id']],
    ['messages_thread_idx', ['thread_id', 'received_at', 'id']],
    // Covers thread summaries' counts (messages, unread, attachments) without reading the rows.
    ['messages_thread_stats_idx', ['thread_id', 'seen', 'has_attachments']],
    ['messages_mailbox_rfcid_idx', ['mailbox_id', 'rfc_message_id']],
    ['messages_blob_idx', ['blob_sha256']],
  ] as const) {
    await db.schema.createIndex(name).on('messages').columns([...cols]).execute();
  }

  await db.schema
    .createTable('message_folders')
    .addColumn('message_id', 'text', (c) => c.notNull())
    .addColumn('folder_id', 'text', (c) => c.notNull())
    .addColumn('mailbox_id', 'text', (c) => c.notNull())
    .addColumn('uid', big, (c) => c.notNull())
    .addColumn('received_at', 'text', (c) => c.notNull())
    .addColumn('seen', 'integer', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('message_folders_pk', ['message_id', 'folder_id'])
    .execute();
  await db.schema.createIndex('message_folders_folder_received_idx').on('message_folders').columns(['folder_id', 'received_at', 'message_id']).execute();
  await db.schema.createIndex('message_folders_folder_seen_idx').on('message_folders').columns(['folder_id', 'seen']).execute();
  await db.schema.createIndex('message_folders_folder_uid_uq').on('message_folders').columns(['folder_id', 'uid']).unique().execute();

  await db.schema
    .createTable('message_keywords')
    .addColumn('message_id', 'text', (c) => c.notNull())
    .addColumn('mailbox_id', 'text', (c) => c.notNull())
    .addColumn('keyword', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('message_keywords_pk', ['message_id', 'keyword'])
    .execute();
  await db.schema.createIndex('message_keywords_mailbox_kw_idx').on('message_keywords').columns(['mailbox_id', 'keyword', 'message_id']).execute();

  await db.schema
    .createTable('identities')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('mailbox_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('reply_to', 'text', (c) => c.notNull())
    .addColumn('bcc', 'text', (c) => c.notNull())
    .addColumn('text_signature', 'text', (c) => c.notNull())
    .addColumn('html_signature', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('identities_mailbox_idx').on('identities').column('mailbox_id').execute();

  await db.schema
    .createTable('incoming_logs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('team_id', 'text')
    .addColumn('mailbox_id', 'text')
    .addColumn('mailbox_email', 'text')
    .addColumn('event_type', 'text', (c) => c.notNull())
    .addColumn('is_spam', 'integer', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('from_email', 'text')
    .addColumn('to_emails', 'text', (c) => c.notNull())
    .addColumn('subject', 'text')
    .addColumn('rfc_message_id', 'text')
    .addColumn('size_bytes', big)
    .addColumn('received_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('incoming_logs_team_idx').on('incoming_logs').columns(['team_id', 'received_at', 'id']).execute();

  await db.schema
    .createTable('settings')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .execute();

  if (dialect === 'sqlite') {
    // Contentless FTS5 keyed by the messages table's rowid; contentless_delete lets us delete rows.
    await sql`CREATE VIRTUAL TABLE messages_fts USING fts5(subject, addresses, body, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2')`.execute(db);
  } else {
    await sql`ALTER TABLE messages ADD COLUMN search tsvector`.execute(db);
    await sql`CREATE INDEX messages_search_gin ON messages USING gin (search)`.execute(db);
  }
}
