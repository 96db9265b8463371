// Blobs in a PostgreSQL table, so several stateless processes share them. Durable on commit.
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../schema.ts';
import { assertDigest, type BlobRef, type BlobStore, type StagedBlob } from './blob-store.ts';

interface PgStaged extends StagedBlob {
  data: Uint8Array;
}

/** Blobs per INSERT statement when a batch is synced (bounds one statement's size). */
const PG_BLOB_INSERT_CHUNK = 32;

export class PgBlobStore implements BlobStore {
  private readonly db: Kysely<Database>;
  constructor(db: Kysely<Database>) {
    this.db = db;
  }

  async put(data: Uint8Array): Promise<BlobRef> {
    const sha256 = createHash('sha256').update(data).digest('hex');
    await this.db
      .insertInto('blobs')
      .values({ sha256, size: data.byteLength, data: Buffer.from(data.buffer, data.byteOffset, data.byteLength) })
      .onConflict((oc) => oc.column('sha256').doNothing())
      .execute();
    return { sha256, size: data.byteLength };
  }

  /** Staging only hashes; sync() inserts a whole batch in one statement (one commit, one flush). */
  async stage(data: Uint8Array): Promise<StagedBlob> {
    const sha256 = createHash('sha256').update(data).digest('hex');
    const staged: PgStaged = { sha256, size: data.byteLength, staged: true, data };
    return staged;
  }

  async sync(blobs: StagedBlob[]): Promise<void> {
    const unique = new Map<string, PgStaged>();
    for (const b of blobs as PgStaged[]) unique.set(b.sha256, b);
    const rows = [...unique.values()];
    for (let i = 0; i < rows.length; i += PG_BLOB_INSERT_CHUNK) {
      const chunk = rows.slice(i, i + PG_BLOB_INSERT_CHUNK);
      await this.db
        .insertInto('blobs')
        .values(chunk.map((b) => ({ sha256: b.sha256, size: b.size, data: Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength) })))
        .onConflict((oc) => oc.column('sha256').doNothing())
        .execute();
    }
  }

  async release(): Promise<void> {}

  async get(sha256: string): Promise<Buffer | null> {
    assertDigest(sha256);
    const row = await this.db.selectFrom('blobs').select('data').where('sha256', '=', sha256).executeTakeFirst();
    return row ? row.data : null;
  }

  async has(sha256: string): Promise<boolean> {
    assertDigest(sha256);
    const row = await this.db.selectFrom('blobs').select('sha256').where('sha256', '=', sha256).executeTakeFirst();
    return row !== undefined;
  }

  async delete(sha256: string): Promise<void> {
    assertDigest(sha256);
    await this.db.deleteFrom('blobs').where('sha256', '=', sha256).execute();
  }
}
