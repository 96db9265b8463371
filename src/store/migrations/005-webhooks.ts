// Webhooks: subscriptions, the delivery outbox (one row per webhook and event, written in the
// event's transaction) and the delivery attempts the API lists (kept 7 days).
import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';

export async function migration005(db: Kysely<any>, dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('webhooks')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('team_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text')
    .addColumn('url', 'text', (c) => c.notNull())
    // JSON arrays.
    .addColumn('event_types', 'text', (c) => c.notNull())
    .addColumn('mailbox_ids', 'text', (c) => c.notNull())
    .addColumn('enabled', 'integer', (c) => c.notNull())
    .addColumn('failing', 'integer', (c) => c.notNull().defaultTo(0))
    // The signing key (whsec_…), stored as is: every delivery is signed with it.
    .addColumn('secret', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('webhooks_team_created_idx').on('webhooks').columns(['team_id', 'created_at', 'id']).execute();

  await db.schema
    .createTable('webhook_deliveries')
    .addColumn('seq', dialect === 'sqlite' ? 'integer' : 'bigserial', (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
    .addColumn('webhook_id', 'text', (c) => c.notNull())
    .addColumn('team_id', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('event_type', 'text', (c) => c.notNull())
    // The exact request body, signed and sent on every attempt.
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('payload_sha256', 'text', (c) => c.notNull())
    .addColumn('payload_bytes', 'integer', (c) => c.notNull())
    // Attempts claimed so far (the claim increments it, so attempt numbers are never reused).
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    // pending (due at next_attempt_at, or leased until then), done, failed, cancelled.
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('next_attempt_at', 'text', (c) => c.notNull())
    .addColumn('last_attempt_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  // Exactly one delivery per webhook and event, whatever runs the fan-out.
  await db.schema.createIndex('webhook_deliveries_webhook_event_uq').on('webhook_deliveries').columns(['webhook_id', 'event_id']).unique().execute();
  await db.schema
    .createIndex('webhook_deliveries_due_idx')
    .on('webhook_deliveries')
    .columns(['next_attempt_at'])
    .where(sql.ref('state'), '=', 'pending')
    .execute();
  await db.schema.createIndex('webhook_deliveries_done_idx').on('webhook_deliveries').columns(['state', 'last_attempt_at']).execute();

  await db.schema
    .createTable('webhook_attempts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('delivery_seq', dialect === 'sqlite' ? 'integer' : 'bigint', (c) => c.notNull())
    .addColumn('webhook_id', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('event_type', 'text', (c) => c.notNull())
    .addColumn('attempt', 'integer', (c) => c.notNull())
    .addColumn('max_attempts', 'integer', (c) => c.notNull())
    .addColumn('result', 'text', (c) => c.notNull())
    .addColumn('response_status', 'integer')
    .addColumn('response_ms', 'integer', (c) => c.notNull())
    .addColumn('response_body', 'text')
    .addColumn('error_message', 'text')
    .addColumn('next_retry_at', 'text')
    .addColumn('request_payload_bytes', 'integer', (c) => c.notNull())
    .addColumn('request_payload_sha256', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('webhook_attempts_webhook_created_idx').on('webhook_attempts').columns(['webhook_id', 'created_at', 'id']).execute();
  await db.schema.createIndex('webhook_attempts_expires_idx').on('webhook_attempts').columns(['expires_at']).execute();
}
