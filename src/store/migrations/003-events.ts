// The event log: every event a webhook or an SSE stream can see (message.received, delivery
// outcomes, sendmux.test), written in the same transaction as the data it reports. `seq` orders
// it across processes (see takeWriteOrderLock); SSE resumes from it and every process tails it.
import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';

export async function migration003(db: Kysely<any>, dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('events')
    .addColumn('seq', dialect === 'sqlite' ? 'integer' : 'bigserial', (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
    .addColumn('id', 'text', (c) => c.notNull().unique())
    .addColumn('team_id', 'text', (c) => c.notNull())
    .addColumn('mailbox_id', 'text')
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('occurred_at', 'text', (c) => c.notNull())
    // WebhookEventData, JSON.
    .addColumn('data', 'text', (c) => c.notNull())
    // The MailboxRealtimeEvent sent on SSE (message.received*), JSON; null for other types.
    .addColumn('realtime', 'text')
    // Set for sendmux.test: only this webhook receives it.
    .addColumn('webhook_id', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('events_mailbox_seq_idx').on('events').columns(['mailbox_id', 'seq']).execute();
  await db.schema.createIndex('events_created_idx').on('events').columns(['created_at']).execute();
}
