// SQLite keeps small blobs (most mail) in the database file, written in the same transaction as
// the rows that refer to them: one WAL fsync per delivered batch instead of a file fsync and a
// directory fsync per message. Larger blobs stay files in the blob folder. PostgreSQL has had the
// table since 001.
import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';

export async function migration008(db: Kysely<any>, dialect: Dialect): Promise<void> {
  if (dialect !== 'sqlite') return;
  await db.schema
    .createTable('blobs')
    .addColumn('sha256', 'text', (c) => c.primaryKey())
    .addColumn('size', 'integer', (c) => c.notNull())
    .addColumn('data', 'blob', (c) => c.notNull())
    .execute();
}
