// Content-addressed blob storage (sha256). Paths are built from the hex digest only, never from
// user input.
export interface BlobRef {
  sha256: string;
  size: number;
}

/** A blob written but not yet durable: sync() makes a batch of them durable together. */
export interface StagedBlob extends BlobRef {
  readonly staged: true;
  /**
   * Bytes the transaction that refers to the blob writes itself, with `tx.blobRows.insert` (SQLite,
   * for small blobs: they live in the database file); sync() leaves them alone. Null for a blob
   * that sync() makes durable (a file, or a PostgreSQL row inserted before the transaction).
   */
  readonly inline: Buffer | null;
}

export interface BlobStore {
  /** Stores the bytes durably (on return they survive a crash) and returns their address. */
  put(data: Uint8Array): Promise<BlobRef>;
  /**
   * Writes the bytes without waiting for the disk. Call sync() on a batch before anything that
   * refers to them commits, write the `inline` ones in that transaction (`tx.blobRows.insert`),
   * and call release() once that commit is over (either way).
   */
  stage(data: Uint8Array): Promise<StagedBlob>;
  /** Makes staged blobs durable: their fsyncs run together, so a batch costs about one disk flush. */
  sync(blobs: StagedBlob[]): Promise<void>;
  /** The commit that referred to these staged blobs is over; they may be garbage-collected again. */
  release(blobs: StagedBlob[]): Promise<void>;
  get(sha256: string): Promise<Buffer | null>;
  has(sha256: string): Promise<boolean>;
  delete(sha256: string): Promise<void>;
}

const SHA256_HEX = /^[a-f0-9]{64}$/;

export function assertDigest(sha256: string): void {
  if (!SHA256_HEX.test(sha256)) throw new Error('blob address must be a sha256 hex digest');
}

/**
 * Digests staged and not yet released in this process: delete() leaves them alone, since a commit
 * that refers to them is on its way.
 */
export class PendingBlobs {
  private readonly counts = new Map<string, number>();
  add(sha256: string): void {
    this.counts.set(sha256, (this.counts.get(sha256) ?? 0) + 1);
  }
  remove(sha256: string): void {
    const n = (this.counts.get(sha256) ?? 1) - 1;
    if (n <= 0) this.counts.delete(sha256);
    else this.counts.set(sha256, n);
  }
  has(sha256: string): boolean {
    return this.counts.has(sha256);
  }
}
