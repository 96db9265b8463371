// Sending: submissions (JMAP EmailSubmission, one per sent message, with the raw message the queue
// delivers), the per-recipient outbound queue (leased rows), sending accounts (providers) and the
// delivery logs the Sending/Management API lists.
import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';

export async function migration006(db: Kysely<any>, dialect: Dialect): Promise<void> {
  const bytes = dialect === 'sqlite' ? 'blob' : 'bytea';
  await db.schema
    .createTable('submissions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('team_id', 'text', (c) => c.notNull())
    .addColumn('mailbox_id', 'text', (c) => c.notNull())
    // The Sending API id (eml_…) and the delivery log (dlog_…) of this send.
    .addColumn('email_id', 'text', (c) => c.notNull().unique())
    .addColumn('log_id', 'text', (c) => c.notNull())
    // The Sent copy (msg_…) and its thread; null once the copy is gone.
    .addColumn('message_id', 'text')
    .addColumn('thread_id', 'text')
    .addColumn('identity_id', 'text')
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('envelope_from', 'text', (c) => c.notNull())
    // JSON array of the envelope recipients in send order.
    .addColumn('rcpt_to', 'text', (c) => c.notNull())
    // pending until send_at (the undo window), then final; canceled stops delivery.
    .addColumn('undo_status', 'text', (c) => c.notNull())
    .addColumn('send_at', 'text', (c) => c.notNull())
    // The message as handed over (not DKIM-signed); dropped once every recipient is final.
    .addColumn('raw', bytes)
    .addColumn('size_bytes', 'integer', (c) => c.notNull())
    // JSON array of blob ids of DSNs produced for this submission.
    .addColumn('dsn_blob_ids', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('submissions_mailbox_send_at_idx').on('submissions').columns(['mailbox_id', 'send_at', 'id']).execute();

  await db.schema
    .createTable('outbound_recipients')
    .addColumn('seq', dialect === 'sqlite' ? 'integer' : 'bigserial', (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
    .addColumn('submission_id', 'text', (c) => c.notNull())
    .addColumn('team_id', 'text', (c) => c.notNull())
    .addColumn('mailbox_id', 'text', (c) => c.notNull())
    .addColumn('email', 'text', (c) => c.notNull())
    // to | cc | bcc (from the message headers), for the delivery log.
    .addColumn('rcpt_type', 'text')
    .addColumn('domain', 'text', (c) => c.notNull())
    // queued | deferred (waiting at next_attempt_at) | delivered | failed
    .addColumn('status', 'text', (c) => c.notNull())
    // The remote server's last reply (or our reason when there was none).
    .addColumn('smtp_reply', 'text')
    // local | provider | mx: how the last attempt went.
    .addColumn('route', 'text')
    .addColumn('provider_id', 'text')
    // Attempts claimed so far; a claim increments it and the finish is guarded by it.
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    // Due time; while leased, the lease's end (a crashed worker's row comes back then).
    .addColumn('next_attempt_at', 'text', (c) => c.notNull())
    .addColumn('lease_owner', 'text')
    .addColumn('first_deferred_at', 'text')
    .addColumn('final_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('outbound_recipients_due_idx')
    .on('outbound_recipients')
    .columns(['next_attempt_at'])
    .where(sql.ref('status'), 'in', ['queued', 'deferred'])
    .execute();
  await db.schema.createIndex('outbound_recipients_submission_idx').on('outbound_recipients').columns(['submission_id', 'seq']).execute();

  await db.schema
    .createTable('providers')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('team_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('status_reason', 'text')
    .addColumn('smtp_host', 'text', (c) => c.notNull())
    .addColumn('smtp_port', 'integer', (c) => c.notNull())
    .addColumn('smtp_protocol', 'text', (c) => c.notNull())
    .addColumn('smtp_username', 'text', (c) => c.notNull())
    // AES-256-GCM under the server's provider key (settings table): iv.tag.ciphertext, base64url.
    .addColumn('smtp_password', 'text', (c) => c.notNull())
    .addColumn('from_email', 'text')
    .addColumn('from_name', 'text')
    .addColumn('reply_to_email', 'text')
    .addColumn('reply_to_name', 'text')
    .addColumn('tracking_domain', 'text')
    .addColumn('percentage', 'integer')
    // JSON ProviderQuotas.
    .addColumn('quotas', 'text', (c) => c.notNull())
    .addColumn('last_tested_at', 'text')
    .addColumn('last_used_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('providers_team_created_idx').on('providers').columns(['team_id', 'created_at', 'id']).execute();

  await db.schema
    .createTable('delivery_logs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('team_id', 'text', (c) => c.notNull())
    .addColumn('mailbox_id', 'text', (c) => c.notNull())
    .addColumn('submission_id', 'text', (c) => c.notNull())
    .addColumn('email_id', 'text', (c) => c.notNull())
    .addColumn('provider_id', 'text')
    .addColumn('provider_name', 'text')
    .addColumn('message_id', 'text')
    .addColumn('from_email', 'text')
    .addColumn('to_email', 'text')
    .addColumn('subject', 'text')
    // pending | sent | failed | rejected
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('status_reason', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('sent_at', 'text')
    .addColumn('size_bytes', 'integer')
    .addColumn('recipient_count', 'integer', (c) => c.notNull())
    .addColumn('accepted_recipient_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('rejected_recipient_count', 'integer', (c) => c.notNull().defaultTo(0))
    // Lower-cased "to from subject message-id" for the search filter.
    .addColumn('search_text', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('delivery_logs_team_created_idx').on('delivery_logs').columns(['team_id', 'created_at', 'id']).execute();
}
