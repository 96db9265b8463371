// Blobs in a PostgreSQL table, so several stateless processes share them. Durable on commit.
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../schema.ts';
import { assertDigest, type BlobRef, type BlobStore, type StagedBlob } from './blob-store.ts';

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

  /** On PostgreSQL a blob is durable once its insert commits; staging is the insert. */
  async stage(data: Uint8Array): Promise<StagedBlob> {
    return { ...(await this.put(data)), staged: true };
  }

  async sync(): Promise<void> {}

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
