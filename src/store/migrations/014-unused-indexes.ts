// Indexes no query reads any more, dropped: each cost every delivery a B-tree insert into a leaf
// of its own (on SQLite a 4 KiB WAL frame, and a page the next checkpoint copies), and each
// flag change an update.
// - messages_thread_stats_idx (thread_id, seen, has_attachments): served the thread counters'
//   count(*) before migration 009 kept them on the thread row; a thread's messages are found by
//   messages_thread_idx (thread_id, received_at, id).
// - message_folders_folder_seen_idx (folder_id, seen): the same for folder counters (folders
//   total_messages, unread_messages since 009).
// - thread_folders_mailbox_idx (mailbox_id): thread_folders is read and written by its key
//   (thread_id, folder_id) only; a deleted mailbox's rows go with its messages.
// Found by planning every statement the test suite runs (EXPLAIN QUERY PLAN): only migration 009's
// one-off recount used the first two.
import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';

export const UNUSED_INDEXES = ['messages_thread_stats_idx', 'message_folders_folder_seen_idx', 'thread_folders_mailbox_idx'] as const;

export async function migration014(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  for (const name of UNUSED_INDEXES) await sql`DROP INDEX IF EXISTS ${sql.ref(name)}`.execute(db);
}
