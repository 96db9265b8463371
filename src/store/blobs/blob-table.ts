// The `blobs` table (PostgreSQL: every blob; SQLite: the small ones), on a connection or inside a
// transaction. One place for its statements: the blob stores and `tx.blobRows` use it.
import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.ts';
import { runCompiled } from '../repos/compiled.ts';
import type { Database } from '../schema.ts';

/** Blobs per INSERT statement (bounds one statement's size). */
const INSERT_CHUNK = 32;

export class BlobTable {
  private readonly db: Kysely<Database>;
  private readonly dialect: Dialect;
  constructor(db: Kysely<Database>, dialect: Dialect) {
    this.db = db;
    this.dialect = dialect;
  }

  /** Stores the bytes of each digest once; a digest already stored keeps its row (same digest, same bytes). */
  async insert(blobs: readonly { sha256: string; data: Uint8Array }[]): Promise<void> {
    const unique = new Map<string, Buffer>();
    for (const b of blobs) unique.set(b.sha256, Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));
    const rows = [...unique].map(([sha256, data]) => ({ sha256, size: data.byteLength, data }));
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      const chunk = rows.slice(i, i + INSERT_CHUNK);
      // Compiled once per row count (every batch of ingest writes one: building it with Kysely
      // each time cost more than the INSERT).
      const params = chunk.flatMap((r) => [r.sha256, r.size, r.data]);
      await runCompiled(this.db, this.dialect, `blobs.insert x${chunk.length}`, (d) => d.insertInto('blobs').values(chunk).onConflict((oc) => oc.column('sha256').doNothing()), params);
    }
  }

  async get(sha256: string): Promise<Buffer | null> {
    const row = await this.db.selectFrom('blobs').select('data').where('sha256', '=', sha256).executeTakeFirst();
    return row ? row.data : null;
  }

  async has(sha256: string): Promise<boolean> {
    return (await this.db.selectFrom('blobs').select('sha256').where('sha256', '=', sha256).executeTakeFirst()) !== undefined;
  }

  async delete(sha256: string): Promise<void> {
    await this.db.deleteFrom('blobs').where('sha256', '=', sha256).execute();
  }
}
