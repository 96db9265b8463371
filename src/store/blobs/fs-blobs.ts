// Blobs as files for the SQLite mode: <root>/ab/cd/<sha256>. Written to a temp file, fsync'd,
// renamed into place, and the directory fsync'd, so an acknowledged blob survives power loss.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { assertDigest, type BlobRef, type BlobStore } from './blob-store.ts';

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

  async put(data: Uint8Array): Promise<BlobRef> {
    const sha256 = createHash('sha256').update(data).digest('hex');
    const { dir, file } = this.pathOf(sha256);
    const ref = { sha256, size: data.byteLength };
    if (await this.has(sha256)) return ref;
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
    const handle = await open(tmp, 'wx');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(tmp, file);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await fsyncDir(dir);
    return ref;
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
    await rm(this.pathOf(sha256).file, { force: true });
  }
}
