// Teams, keys, domains, mailboxes, sender filters, idempotency records, the change log and (on
// PostgreSQL) the blob table.
import { sql, type Kysely } from 'kysely';
import { bigintType, type Dialect } from '../dialect.ts';

export async function migration001(db: Kysely<any>, dialect: Dialect): Promise<void> {
  const big = bigintType(dialect);

  await db.schema
    .createTable('teams')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('team_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('mailbox_id', 'text')
    .addColumn('name', 'text')
    .addColumn('secret_hash', 'text', (c) => c.notNull())
    .addColumn('key_prefix', 'text', (c) => c.notNull())
    .addColumn('key_suffix', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('revoked_at', 'text')
    .execute();
  await db.schema.createIndex('api_keys_secret_hash_uq').on('api_keys').column('secret_hash').unique().execute();
  await db.schema.createIndex('api_keys_mailbox_idx').on('api_keys').columns(['mailbox_id', 'created_at']).execute();
  await db.schema.createIndex('api_keys_team_kind_idx').on('api_keys').columns(['team_id', 'kind']).execute();

  await db.schema
    .createTable('domains')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('team_id', 'text')
    .addColumn('domain', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('is_default', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('verification_status', 'text', (c) => c.notNull())
    .addColumn('verified_at', 'text')
    .addColumn('verify_token', 'text', (c) => c.notNull())
    .addColumn('dkim_selector', 'text', (c) => c.notNull())
    .addColumn('dkim_private_key', 'text', (c) => c.notNull())
    .addColumn('dkim_public_key', 'text', (c) => c.notNull())
    .addColumn('dkim_status', 'text', (c) => c.notNull())
    .addColumn('mail_from_status', 'text', (c) => c.notNull())
    .addColumn('identity_status', 'text', (c) => c.notNull())
    .addColumn('checked_at', 'text')
    .addColumn('fail_streak', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('deleting', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('domains_domain_uq').on('domains').column('domain').unique().execute();
  await db.schema.createIndex('domains_team_created_idx').on('domains').columns(['team_id', 'created_at', 'id']).execute();

  await db.schema
    .createTable('mailboxes')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('team_id', 'text', (c) => c.notNull())
    .addColumn('domain_id', 'text', (c) => c.notNull())
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('display_name', 'text')
    .addColumn('quota_bytes', big)
    .addColumn('used_bytes', big, (c) => c.notNull().defaultTo(0))
    .addColumn('send_scope', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('cleanup_pending', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('deleted_at', 'text')
    .execute();
  // One live mailbox per address; deleted rows are kept for audit and may repeat an address.
  await db.schema
    .createIndex('mailboxes_email_live_uq')
    .on('mailboxes')
    .column('email')
    .unique()
    .where(sql.ref('status'), '<>', 'deleted')
    .execute();
  await db.schema.createIndex('mailboxes_email_idx').on('mailboxes').column('email').execute();
  await db.schema.createIndex('mailboxes_team_created_idx').on('mailboxes').columns(['team_id', 'created_at', 'id']).execute();
  await db.schema.createIndex('mailboxes_domain_idx').on('mailboxes').columns(['domain_id', 'status']).execute();

  await db.schema
    .createTable('filter_sets')
    .addColumn('owner_kind', 'text', (c) => c.notNull())
    .addColumn('owner_id', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('rules', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('filter_sets_pk', ['owner_kind', 'owner_id'])
    .execute();

  await db.schema
    .createTable('idempotency_keys')
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('fingerprint', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('status_code', 'integer')
    .addColumn('response', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['scope', 'key'])
    .execute();
  await db.schema.createIndex('idempotency_keys_expires_idx').on('idempotency_keys').column('expires_at').execute();

  await db.schema
    .createTable('changes')
    .addColumn('change_id', dialect === 'sqlite' ? 'integer' : 'bigserial', (c) =>
      dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey(),
    )
    .addColumn('team_id', 'text')
    .addColumn('mailbox_id', 'text')
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('object_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('changes_mailbox_type_idx').on('changes').columns(['mailbox_id', 'type', 'change_id']).execute();

  if (dialect === 'postgres') {
    await db.schema
      .createTable('blobs')
      .addColumn('sha256', 'text', (c) => c.primaryKey())
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('data', 'bytea', (c) => c.notNull())
      .execute();
  }
}
