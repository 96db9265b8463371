// The mailmux VFS (mailmux-vfs.c, built into build/ by scripts/build-native.ts at `npm install`):
// SQLite's "unix" VFS, with a transaction's WAL frames written in one system call instead of two
// per page (~70 for a delivered message). Loaded once per process, through a connection that stays
// open, it becomes the default VFS of every connection opened afterwards in any thread.
//
// It is an optimisation only: without the library (no C compiler at install, another platform),
// or with MAILMUX_SQLITE_VFS=unix, every connection uses SQLite's own VFS. The choice is
// process-wide: the first SQLite store of a process makes it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import SqliteDatabase from 'better-sqlite3';

export type SqliteVfs = 'mailmux' | 'unix';

export const VFS_LIBRARY = fileURLToPath(new URL(`../../../build/mailmux-vfs.${process.platform === 'darwin' ? 'dylib' : 'so'}`, import.meta.url));

export interface VfsStats {
  /** True when it is the default VFS (every connection opened since uses it). */
  default: boolean;
  /** Writes SQLite made to WAL files, and the writes that reached the files for them. */
  wal_writes: number;
  flushes: number;
  /** Flushes at the end of a commit (the frame carrying the commit mark). */
  commit_flushes: number;
  /** Frame headers rewritten after their frame was read back (checksums at commit): written unbuffered. */
  header_rewrites: number;
  /** Bytes still buffered when a commit was being published: 0 unless the commit detection failed. */
  late_flushes: number;
}

interface Loaded {
  vfs: SqliteVfs;
  /** Why the mailmux VFS is not in use. */
  reason: string | null;
  /** The connection that loaded the library; kept open for the life of the process. */
  loader: SqliteDatabase.Database | null;
}

let loaded: Loaded | null = null;

/** Makes `wanted` the VFS of this process's SQLite connections, as far as it can; returns what is in use and why. */
export function useSqliteVfs(wanted: SqliteVfs): { vfs: SqliteVfs; reason: string | null } {
  if (loaded) return { vfs: loaded.vfs, reason: loaded.reason };
  if (wanted === 'unix') loaded = { vfs: 'unix', reason: 'MAILMUX_SQLITE_VFS=unix', loader: null };
  else if (!existsSync(VFS_LIBRARY)) loaded = { vfs: 'unix', reason: `${VFS_LIBRARY} is not built (npm install builds it with a C compiler)`, loader: null };
  else {
    const loader = new SqliteDatabase(':memory:');
    try {
      // Its entry point, sqlite3_mailmuxvfs_init, is the one SQLite derives from the file name.
      loader.loadExtension(VFS_LIBRARY);
      loaded = { vfs: 'mailmux', reason: null, loader };
    } catch (err) {
      loader.close();
      loaded = { vfs: 'unix', reason: `loading ${VFS_LIBRARY} failed: ${(err as Error).message}`, loader: null };
    }
  }
  return { vfs: loaded.vfs, reason: loaded.reason };
}

/** The mailmux VFS's counters (process-wide), or null when it is not loaded. */
export function sqliteVfsStats(): VfsStats | null {
  if (!loaded?.loader) return null;
  const row = loaded.loader.prepare('SELECT mailmux_vfs_stats() AS s').get() as { s: string };
  const s = JSON.parse(row.s) as Omit<VfsStats, 'default'> & { default: number };
  return { ...s, default: s.default === 1 };
}
