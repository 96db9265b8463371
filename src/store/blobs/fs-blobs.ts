// Blobs of the SQLite mode. Small ones (most mail) live in the database file, in the `blobs` table,
// written by the transaction that refers to them: a batch of deliveries costs one WAL fsync. Larger
// ones are files: <root>/ab/cd/<sha256>, written to a temp file, renamed into place, then the file
// and its directory are fsync'd before anything refers to the blob, so an acknowledged blob
// survives power loss. Ingest stages many blobs and syncs them together: their fsyncs share a
// journal commit instead of costing two disk flushes per message. Reads look in the table first,
// then in the folder (a data folder written before the table existed keeps every blob as a file).
import { hash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import type { Database } from '../schema.ts';
import { assertDigest, PendingBlobs, type BlobRef, type BlobStore, type StagedBlob } from './blob-store.ts';
import { BlobTable } from './blob-table.ts';

/**
 * Blobs up to this size are kept in the SQLite file. SQLite reads and writes blobs of up to about
 * 100 KB faster than separate files (sqlite.org/intern-v-extern-blob.html); larger ones would
 * bloat the WAL and its checkpoints.
 */
export const SQLITE_INLINE_BLOB_MAX_BYTES = 128 * 1024;

interface FsStaged extends StagedBlob {
  dir: string;
  handle: FileHandle | null;
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export class FsBlobStore implements BlobStore {
  private readonly root: string;
  private readonly table: BlobTable | null;
  private readonly inlineMax: number;
  /** root: the blob folder; db: the SQLite database that keeps blobs up to inlineMaxBytes (none: files only). */
  constructor(root: string, db: Kysely<Database> | null = null, inlineMaxBytes = SQLITE_INLINE_BLOB_MAX_BYTES) {
    this.root = root;
    this.table = db ? new BlobTable(db, 'sqlite') : null;
    this.inlineMax = db ? inlineMaxBytes : -1;
  }

  private pathOf(sha256: string): { dir: string; file: string } {
    assertDigest(sha256);
    const dir = join(this.root, sha256.slice(0, 2), sha256.slice(2, 4));
    return { dir, file: join(dir, sha256) };
  }

  /** Directories known to exist (saves a mkdir per blob). */
  private readonly dirs = new Set<string>();
  /** Staged blobs not yet released: delete() leaves them alone (a commit is about to use them). */
  private readonly pending = new PendingBlobs();

  async put(data: Uint8Array): Promise<BlobRef> {
    if (this.table && data.byteLength <= this.inlineMax) {
      // One autocommit statement: durable when it returns (the driver flushes the WAL first).
      const sha256 = hash('sha256', data, 'hex');
      await this.table.insert([{ sha256, data }]);
      return { sha256, size: data.byteLength };
    }
    const staged = await this.stage(data);
    try {
      await this.sync([staged]);
    } finally {
      await this.release([staged]);
    }
    return { sha256: staged.sha256, size: staged.size };
  }

  async stage(data: Uint8Array): Promise<StagedBlob> {
    const sha256 = hash('sha256', data, 'hex');
    this.pending.add(sha256);
    if (data.byteLength <= this.inlineMax) {
      const staged: FsStaged = { sha256, size: data.byteLength, staged: true, inline: Buffer.from(data.buffer, data.byteOffset, data.byteLength), dir: '', handle: null };
      return staged;
    }
    const { dir, file } = this.pathOf(sha256);
    try {
      if (!this.dirs.has(dir)) {
        await mkdir(dir, { recursive: true });
        this.dirs.add(dir);
      }
      // Always written, even when a file of that name exists: a file left by a crash before its
      // sync may be incomplete, and this write replaces it with the full bytes.
      const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
      const handle = await open(tmp, 'wx');
      try {
        await handle.writeFile(data);
        await rename(tmp, file);
      } catch (err) {
        await handle.close();
        await unlink(tmp).catch(() => undefined);
        throw err;
      }
      const staged: FsStaged = { sha256, size: data.byteLength, staged: true, inline: null, dir, handle };
      return staged;
    } catch (err) {
      this.pending.remove(sha256);
      throw err;
    }
  }

  async sync(blobs: StagedBlob[]): Promise<void> {
    const own = (blobs as FsStaged[]).filter((b) => b.inline === null);
    if (own.length === 0) return;
    await Promise.all(own.map((b) => b.handle?.sync()));
    await Promise.all([...new Set(own.map((b) => b.dir))].map(fsyncDir));
  }

  async release(blobs: StagedBlob[]): Promise<void> {
    for (const b of blobs as FsStaged[]) {
      const handle = b.handle;
      b.handle = null;
      await handle?.close();
      this.pending.remove(b.sha256);
    }
  }

  async get(sha256: string): Promise<Buffer | null> {
    assertDigest(sha256);
    const inDb = this.table ? await this.table.get(sha256) : null;
    if (inDb) return inDb;
    try {
      return await readFile(this.pathOf(sha256).file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async has(sha256: string): Promise<boolean> {
    // Outside the try: a malformed address is refused, not reported as absent.
    const { file } = this.pathOf(sha256);
    if (this.table && (await this.table.has(sha256))) return true;
    try {
      await stat(file);
      return true;
    } catch {
      return false;
    }
  }

  async delete(sha256: string): Promise<void> {
    const { file } = this.pathOf(sha256);
    if (this.pending.has(sha256)) return; // a delivery of the same bytes is about to commit
    if (this.table) await this.table.delete(sha256);
    await rm(file, { force: true });
  }
}
