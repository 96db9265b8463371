// Migration 014 drops three indexes no query reads (see the migration): a store opened on either
// backend has none of them, while the mail tables keep the indexes their reads do use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import { describeEachBackend } from '../helpers/backends.ts';
import { openStore } from '../../src/store/index.ts';
import { UNUSED_INDEXES } from '../../src/store/migrations/014-unused-indexes.ts';

/** Index names on the mail tables, read from the database's own catalogue. */
async function indexNames(db: { databaseUrl: string | null; dataDir: string; pgSchema?: string }): Promise<string[]> {
  const tables = ['messages', 'message_folders', 'thread_folders'];
  if (db.databaseUrl) {
    const client = new pg.Client({ connectionString: db.databaseUrl });
    await client.connect();
    try {
      const r = await client.query<{ indexname: string }>('SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = ANY($2)', [db.pgSchema, tables]);
      return r.rows.map((x) => x.indexname);
    } finally {
      await client.end();
    }
  }
  const file = new SqliteDatabase(join(db.dataDir, 'mailmux.sqlite'), { readonly: true });
  try {
    return (file.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN (${tables.map(() => '?').join(',')})`).all(...tables) as { name: string }[]).map((x) => x.name);
  } finally {
    file.close();
  }
}

describeEachBackend('migration 014: unused indexes', (backend) => {
  test('the three unused indexes are gone; those the reads use are kept', async () => {
    const db = await backend.provision();
    const store = await openStore({ databaseUrl: db.databaseUrl, dataDir: db.dataDir, ...(db.pgSchema ? { pgSchema: db.pgSchema } : {}) });
    try {
      const names = await indexNames(db);
      for (const gone of UNUSED_INDEXES) assert.ok(!names.includes(gone), `${gone} still exists`);
      for (const kept of ['messages_thread_idx', 'messages_mailbox_received_idx', 'message_folders_folder_received_idx', 'message_folders_folder_uid_uq']) {
        assert.ok(names.includes(kept), `${kept} is missing`);
      }
    } finally {
      await store.close();
      await db.drop();
    }
  });
});
