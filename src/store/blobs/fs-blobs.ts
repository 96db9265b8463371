// Blobs as files for the SQLite mode: <root>/ab/cd/<sha256>. Written to a temp file, renamed into
// place, then the file and its directory are fsync'd before anything refers to the blob, so an
// acknowledged blob survives power loss. Ingest stages many blobs and syncs them together: their
// fsyncs share a journal commit instead of costing two disk flushes per message.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { assertDigest, type BlobRef, type BlobStore, type StagedBlob } from './blob-store.ts';

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
  constructor(root: string) {
    this.root = root;
  }

  private pathOf(sha256: string): { dir: string; file: string } {
    assertDigest(sha256);
    const dir = join(this.root, sha256.slice(0, 2), sha256.slice(2, 4));
    return { dir, file: join(dir, sha256) };
  }

  /** Directories known to exist (saves a mkdir per blob). */
  private readonly dirs = new Set<string>();
  /** Staged blobs not yet released: delete() leaves them alone (a commit is about to use them). */
  private readonly pending = new Map<string, number>();

  async put(data: Uint8Array): Promise<BlobRef> {
    const staged = await this.stage(data);
    try {
      await this.sync([staged]);
    } finally {
      await this.release([staged]);
    }
    return { sha256: staged.sha256, size: staged.size };
  }

  async stage(data: Uint8Array): Promise<StagedBlob> {
    const sha256 = createHash('sha256').update(data).digest('hex');
    const { dir, file } = this.pathOf(sha256);
    this.pending.set(sha256, (this.pending.get(sha256) ?? 0) + 1);
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
      const staged: FsStaged = { sha256, size: data.byteLength, staged: true, dir, handle };
      return staged;
    } catch (err) {
      this.unpend(sha256);
      throw err;
    }
  }

  async sync(blobs: StagedBlob[]): Promise<void> {
    const own = blobs as FsStaged[];
    await Promise.all(own.map((b) => b.handle?.sync()));
    await Promise.all([...new Set(own.map((b) => b.dir))].map(fsyncDir));
  }

  async release(blobs: StagedBlob[]): Promise<void> {
    for (const b of blobs as FsStaged[]) {
      const handle = b.handle;
      b.handle = null;
      await handle?.close();
      this.unpend(b.sha256);
    }
  }

  private unpend(sha256: string): void {
    const n = (this.pending.get(sha256) ?? 1) - 1;
    if (n <= 0) this.pending.delete(sha256);
    else this.pending.set(sha256, n);
  }

  async get(sha256: string): Promise<Buffer | null> {
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
    await rm(file, { force: true });
  }
}
