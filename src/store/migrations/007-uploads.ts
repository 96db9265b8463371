// Outbound attachment uploads: the uploaded files (mailbox blob_… and Sending API att_…, bytes in the
// blob store by sha256) and the presigned upload intents (upl_…) whose one-time token is stored hashed.
import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';

export async function migration007(db: Kysely<any>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('uploads')
    .addColumn('id', 'text', (c) => c.primaryKey())
    // mailbox (blob_…, POST /mailbox/…) | sending (att_…, POST /emails/…)
    .addColumn('surface', 'text', (c) => c.notNull())
    .addColumn('team_id', 'text', (c) => c.notNull())
    .addColumn('mailbox_id', 'text', (c) => c.notNull())
    .addColumn('filename', 'text', (c) => c.notNull())
    .addColumn('content_type', 'text', (c) => c.notNull())
    .addColumn('size_bytes', 'integer', (c) => c.notNull())
    // Address of the bytes in the blob store.
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('uploads_expires_idx').on('uploads').columns(['expires_at']).execute();

  await db.schema
    .createTable('upload_intents')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('surface', 'text', (c) => c.notNull())
    .addColumn('team_id', 'text', (c) => c.notNull())
    .addColumn('mailbox_id', 'text', (c) => c.notNull())
    .addColumn('filename', 'text', (c) => c.notNull())
    // The Content-Type the PUT must carry (null: any, Sending intents without content_type).
    .addColumn('content_type', 'text')
    .addColumn('size_bytes', 'integer', (c) => c.notNull())
    // Expected sha256 of the bytes (Sending intents may declare it).
    .addColumn('sha256', 'text')
    // sha256 of the upload token: the token itself is never stored.
    .addColumn('token_hash', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    // The upload made by the PUT (a repeated PUT with the same bytes answers it again).
    .addColumn('upload_id', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('upload_intents_expires_idx').on('upload_intents').columns(['expires_at']).execute();
}
