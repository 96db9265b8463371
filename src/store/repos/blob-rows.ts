// Blobs kept in the database, written by the transaction that refers to them (see StagedBlob.inline):
// the blob and the rows naming it commit together, with one flush.
import type { StagedBlob } from '../blobs/blob-store.ts';
import type { RepoContext } from './common.ts';

/** Blobs per INSERT statement (bounds one statement's size). */
const INSERT_CHUNK = 32;

export class BlobRowsRepo {
  private readonly ctx: RepoContext;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
  }

  /** Writes the inline bytes of staged blobs; a blob already stored (same digest, same bytes) is kept as is. */
  async insert(blobs: readonly StagedBlob[]): Promise<void> {
    const unique = new Map<string, Buffer>();
    for (const b of blobs) if (b.inline) unique.set(b.sha256, b.inline);
    const rows = [...unique].map(([sha256, data]) => ({ sha256, size: data.byteLength, data }));
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      await this.ctx.db
        .insertInto('blobs')
        .values(rows.slice(i, i + INSERT_CHUNK))
        .onConflict((oc) => oc.column('sha256').doNothing())
        .execute();
    }
  }
}
