// Blobs kept in the database, written by the transaction that refers to them (see StagedBlob.inline):
// the blob and the rows naming it commit together, with one flush.
import type { StagedBlob } from '../blobs/blob-store.ts';
import { BlobTable } from '../blobs/blob-table.ts';
import type { RepoContext } from './common.ts';

export class BlobRowsRepo {
  private readonly table: BlobTable;
  constructor(ctx: RepoContext) {
    this.table = new BlobTable(ctx.db, ctx.dialect);
  }

  /** Writes the inline bytes of staged blobs; a blob already stored (same digest, same bytes) is kept as is. */
  async insert(blobs: readonly Pick<StagedBlob, 'sha256' | 'inline'>[]): Promise<void> {
    await this.table.insert(blobs.flatMap((b) => (b.inline ? [{ sha256: b.sha256, data: b.inline }] : [])));
  }
}
