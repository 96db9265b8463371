// Blobs in a PostgreSQL table, so several stateless processes share them. Durable on commit.
// A staged blob is written by the transaction that refers to it (tx.blobRows.insert): the bytes
// and the message rows commit together.
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../schema.ts';
import { assertDigest, PendingBlobs, type BlobRef, type BlobStore, type StagedBlob } from './blob-store.ts';

export class PgBlobStore implements BlobStore {
  private readonly db: Kysely<Database>;
  private readonly pending = new PendingBlobs();
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

  /** Staging only hashes: the referring transaction inserts the bytes. */
  async stage(data: Uint8Array): Promise<StagedBlob> {
    const sha256 = createHash('sha256').update(data).digest('hex');
    this.pending.add(sha256);
    return { sha256, size: data.byteLength, staged: true, inline: Buffer.from(data.buffer, data.byteOffset, data.byteLength) };
  }

  async sync(): Promise<void> {}

  async release(blobs: StagedBlob[]): Promise<void> {
    for (const b of blobs) this.pending.remove(b.sha256);
  }

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
    if (this.pending.has(sha256)) return; // a delivery of the same bytes in this process is about to commit
    await this.db.deleteFrom('blobs').where('sha256', '=', sha256).execute();
  }
}
