// Sync: how far the change log was purged per (mailbox, type). A state token older than its
// horizon cannot be answered incrementally (the client gets sync_required and refetches); the
// newest row of every (mailbox, type) is always kept, so no state token ever goes backwards.
import type { Kysely } from 'kysely';
import { bigintType, type Dialect } from '../dialect.ts';

export async function migration004(db: Kysely<any>, dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('change_horizons')
    .addColumn('mailbox_id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    // The highest change_id deleted for (mailbox, type): states below it are gone.
    .addColumn('purged_through', bigintType(dialect), (c) => c.notNull())
    .addPrimaryKeyConstraint('change_horizons_pk', ['mailbox_id', 'type'])
    .execute();
  // Retention finds old rows by age.
  await db.schema.createIndex('changes_created_idx').on('changes').columns(['created_at', 'change_id']).execute();
}
