/*
** mailmux-vfs: a SQLite VFS shim that writes a transaction's WAL frames with one pwrite.
**
** SQLite's WAL writer issues two write() system calls per frame: the 24-byte frame header, then the
** page. A delivered message dirties ~35-40 pages, so committing it costs ~75 system calls, and on the
** virtual machines Mailmux is measured on each costs a few microseconds, more than copying the bytes.
** This shim wraps the default VFS ("unix") and, for WAL files only, gathers contiguous appends in
** memory and writes them with one call per 124 KiB.
**
** When buffered bytes reach the file (the only thing that changes; the bytes and their order do not):
** - at the end of a commit: the write that completes the frame carrying the commit mark (a frame
**   header whose "database size after commit" field is non-zero) flushes everything before it
**   returns, so a failure is that write's failure and SQLite fails the commit as it would have;
**   the wal-index header that makes the commit visible is written only after that;
** - before any other operation on the WAL file (read, sync, truncate, size, file control, lock,
**   close), and before a write that does not continue the buffered run; a frame header rewritten
**   right after its frame was read back (the checksum rewrite at the commit of a transaction that
**   wrote a page twice, whose last header carries the commit mark) is not buffered at all;
** - when the buffer is full (MAX_BUFFER);
** - as a safety net, at every shared-memory barrier of a database on the same thread (SQLite calls
**   one while publishing a commit): nothing is ever pending there unless the commit detection above
**   missed a case, which the `mailmux_vfs_stats()` counter `late_flushes` would show.
** Until then no other connection can see the frames: readers and checkpointers only read frames
** that a published wal-index header covers. Durability is unchanged: the fsync that makes a commit
** durable (ours from JavaScript, or SQLite's xSync) comes after the flush.
**
** Loaded once per process with sqlite3_load_extension from a connection that stays open; it
** registers itself as the default VFS, so every connection opened afterwards, in any thread of the
** process, uses it. Built by scripts/build-native.ts; without it Mailmux runs on the plain "unix" VFS.
*/
#include <stdlib.h>
#include <string.h>
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1

#define VFS_NAME "mailmux"
#define FIRST_BUFFER (256 * 1024)
#define MAX_BUFFER (4 * 1024 * 1024)
#define WAL_FRAME_HEADER 24
#define WRITE_CHUNK (124 * 1024)

typedef struct MmFile MmFile;
struct MmFile {
  sqlite3_file base;     /* this shim's methods */
  sqlite3_file *real;    /* the wrapped file (allocated right after this struct) */
  int isWal;
  /* WAL files only: a run of contiguous bytes not yet written, starting at file offset bufOff. */
  unsigned char *buf;
  int bufLen;
  int bufCap;
  sqlite3_int64 bufOff;
  /* The last buffered write was a commit frame's header: flush once its page is buffered too. */
  int commitHeader;
  /* Where the last read of the file started. */
  sqlite3_int64 lastRead;
  /* This thread's files with buffered bytes (the safety-net flush at a shared-memory barrier). */
  MmFile *nextPending;
  int listed;
};

static sqlite3_vfs *root;  /* the VFS this one wraps */
static sqlite3_vfs mmVfs;
static sqlite3_io_methods mmMethods, mmMethodsV1;
static __thread MmFile *pending;

/* Process-wide counters, for tests and benchmarks (mailmux_vfs_stats()). */
static sqlite3_int64 statWalWrites, statFlushes, statCommitFlushes, statRewrites, statLateFlushes;
#define COUNT(x) __atomic_fetch_add(&(x), 1, __ATOMIC_RELAXED)

static void unlist(MmFile *f) {
  if (!f->listed) return;
  for (MmFile **p = &pending; *p; p = &(*p)->nextPending) {
    if (*p == f) {
      *p = f->nextPending;
      break;
    }
  }
  f->listed = 0;
  f->nextPending = 0;
}

/* Writes the buffered run. On failure the run is dropped and the error returned: SQLite then treats
** the frames as unwritten, as it would had its own write failed. */
static int flush(MmFile *f) {
  if (f->bufLen == 0) return SQLITE_OK;
  int n = f->bufLen;
  f->bufLen = 0;
  f->commitHeader = 0;
  unlist(f);
  COUNT(statFlushes);
  /* The unix VFS writes at most 128 KiB - 1 per call (it masks the length with 0x1ffff). */
  for (int done = 0; done < n; done += WRITE_CHUNK) {
    int rc = f->real->pMethods->xWrite(f->real, f->buf + done, n - done < WRITE_CHUNK ? n - done : WRITE_CHUNK, f->bufOff + done);
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

static int reserve(MmFile *f, int need) {
  if (need <= f->bufCap) return SQLITE_OK;
  int cap = f->bufCap ? f->bufCap : FIRST_BUFFER;
  while (cap < need) cap *= 2;
  if (cap > MAX_BUFFER) cap = MAX_BUFFER;
  if (cap < need) return SQLITE_FULL;  /* not reached: callers never buffer more than MAX_BUFFER */
  unsigned char *b = sqlite3_realloc(f->buf, cap);
  if (!b) return SQLITE_NOMEM;
  f->buf = b;
  f->bufCap = cap;
  return SQLITE_OK;
}

static int mmClose(sqlite3_file *p) {
  MmFile *f = (MmFile *)p;
  int rc = flush(f);
  unlist(f);
  sqlite3_free(f->buf);
  f->buf = 0;
  f->bufCap = 0;
  int rc2 = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
  return rc != SQLITE_OK ? rc : rc2;
}

static int mmRead(sqlite3_file *p, void *out, int n, sqlite3_int64 off) {
  MmFile *f = (MmFile *)p;
  int rc = flush(f);
  if (rc != SQLITE_OK) return rc;
  f->lastRead = off;
  return f->real->pMethods->xRead(f->real, out, n, off);
}

/* A frame header whose bytes 4-7 (the database size in pages after a commit, else zero) are set. */
static int isCommitHeader(const void *data, int n) {
  const unsigned char *h = data;
  return n == WAL_FRAME_HEADER && (h[4] | h[5] | h[6] | h[7]) != 0;
}

static int mmWrite(sqlite3_file *p, const void *data, int n, sqlite3_int64 off) {
  MmFile *f = (MmFile *)p;
  if (!f->isWal) return f->real->pMethods->xWrite(f->real, data, n, off);
  COUNT(statWalWrites);
  /* This write is the page of a commit frame (its header was the write before). */
  int commitPage = f->commitHeader;
  f->commitHeader = 0;
  int rc;
  if (n == WAL_FRAME_HEADER && off == f->lastRead) {
    /* The header of a frame just read back: at commit, a transaction that wrote a page twice has
    ** the checksums of its frames rewritten, each header after reading its frame. The last one
    ** carries the commit mark and no page follows it, so it is written at once. */
    rc = flush(f);
    if (rc == SQLITE_OK) rc = f->real->pMethods->xWrite(f->real, data, n, off);
    COUNT(statRewrites);
    return rc;
  }
  if (!(f->bufLen > 0 && off == f->bufOff + f->bufLen && f->bufLen + n <= MAX_BUFFER)) {
    /* Not a continuation of the buffered run (or it would overflow): that run is written first. */
    rc = flush(f);
    if (rc != SQLITE_OK) return rc;
    f->bufOff = off;
  }
  if (n > WRITE_CHUNK || n > MAX_BUFFER - f->bufLen || reserve(f, f->bufLen + n) != SQLITE_OK) {
    rc = flush(f);
    if (commitPage) COUNT(statCommitFlushes);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xWrite(f->real, data, n, off);
  }
  memcpy(f->buf + f->bufLen, data, n);
  f->bufLen += n;
  if (!f->listed) {
    f->nextPending = pending;
    pending = f;
    f->listed = 1;
  }
  if (commitPage) {
    /* The transaction's frames are all here. */
    COUNT(statCommitFlushes);
    return flush(f);
  }
  f->commitHeader = isCommitHeader(data, n);
  return SQLITE_OK;
}

static int mmTruncate(sqlite3_file *p, sqlite3_int64 size) {
  MmFile *f = (MmFile *)p;
  int rc = flush(f);
  return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int mmSync(sqlite3_file *p, int flags) {
  MmFile *f = (MmFile *)p;
  int rc = flush(f);
  return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int mmFileSize(sqlite3_file *p, sqlite3_int64 *size) {
  MmFile *f = (MmFile *)p;
  int rc = flush(f);
  return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int mmLock(sqlite3_file *p, int level) {
  MmFile *f = (MmFile *)p;
  int rc = flush(f);
  return rc != SQLITE_OK ? rc : f->real->pMethods->xLock(f->real, level);
}

static int mmUnlock(sqlite3_file *p, int level) {
  MmFile *f = (MmFile *)p;
  int rc = flush(f);
  return rc != SQLITE_OK ? rc : f->real->pMethods->xUnlock(f->real, level);
}

static int mmCheckReservedLock(sqlite3_file *p, int *out) {
  MmFile *f = (MmFile *)p;
  return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int mmFileControl(sqlite3_file *p, int op, void *arg) {
  MmFile *f = (MmFile *)p;
  int rc = flush(f);
  return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int mmSectorSize(sqlite3_file *p) {
  MmFile *f = (MmFile *)p;
  return f->real->pMethods->xSectorSize(f->real);
}

static int mmDeviceCharacteristics(sqlite3_file *p) {
  MmFile *f = (MmFile *)p;
  return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int mmShmMap(sqlite3_file *p, int pg, int size, int extend, void volatile **out) {
  MmFile *f = (MmFile *)p;
  return f->real->pMethods->xShmMap(f->real, pg, size, extend, out);
}

static int mmShmLock(sqlite3_file *p, int offset, int n, int flags) {
  MmFile *f = (MmFile *)p;
  return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void mmShmBarrier(sqlite3_file *p) {
  MmFile *f = (MmFile *)p;
  /* The safety net (see the top): never has work unless a commit went undetected. */
  while (pending) {
    MmFile *w = pending;
    if (w->bufLen > 0) COUNT(statLateFlushes);
    flush(w);  /* unlists w: an error here cannot be reported, which is why commits flush earlier */
    unlist(w);
  }
  f->real->pMethods->xShmBarrier(f->real);
}

static int mmShmUnmap(sqlite3_file *p, int deleteFlag) {
  MmFile *f = (MmFile *)p;
  return f->real->pMethods->xShmUnmap(f->real, deleteFlag);
}

static int mmFetch(sqlite3_file *p, sqlite3_int64 off, int n, void **out) {
  MmFile *f = (MmFile *)p;
  return f->real->pMethods->xFetch(f->real, off, n, out);
}

static int mmUnfetch(sqlite3_file *p, sqlite3_int64 off, void *ptr) {
  MmFile *f = (MmFile *)p;
  return f->real->pMethods->xUnfetch(f->real, off, ptr);
}

static int mmOpen(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *p, int flags, int *outFlags) {
  (void)vfs;
  MmFile *f = (MmFile *)p;
  memset(f, 0, sizeof(*f));
  f->real = (sqlite3_file *)&f[1];
  f->lastRead = -1;
  int rc = root->xOpen(root, name, f->real, flags, outFlags);
  if (f->real->pMethods) {
    f->isWal = (flags & SQLITE_OPEN_WAL) != 0;
    /* A wrapped file without shared memory (version 1) must not look as if it had it. */
    p->pMethods = f->real->pMethods->iVersion >= 3 ? &mmMethods : &mmMethodsV1;
  }
  return rc;
}

static int mmDelete(sqlite3_vfs *v, const char *name, int syncDir) { (void)v; return root->xDelete(root, name, syncDir); }
static int mmAccess(sqlite3_vfs *v, const char *name, int flags, int *out) { (void)v; return root->xAccess(root, name, flags, out); }
static int mmFullPathname(sqlite3_vfs *v, const char *name, int n, char *out) { (void)v; return root->xFullPathname(root, name, n, out); }
static void *mmDlOpen(sqlite3_vfs *v, const char *path) { (void)v; return root->xDlOpen(root, path); }
static void mmDlError(sqlite3_vfs *v, int n, char *msg) { (void)v; root->xDlError(root, n, msg); }
static void (*mmDlSym(sqlite3_vfs *v, void *h, const char *sym))(void) { (void)v; return root->xDlSym(root, h, sym); }
static void mmDlClose(sqlite3_vfs *v, void *h) { (void)v; root->xDlClose(root, h); }
static int mmRandomness(sqlite3_vfs *v, int n, char *out) { (void)v; return root->xRandomness(root, n, out); }
static int mmSleep(sqlite3_vfs *v, int us) { (void)v; return root->xSleep(root, us); }
static int mmCurrentTime(sqlite3_vfs *v, double *t) { (void)v; return root->xCurrentTime(root, t); }
static int mmGetLastError(sqlite3_vfs *v, int n, char *out) { (void)v; return root->xGetLastError(root, n, out); }
static int mmCurrentTimeInt64(sqlite3_vfs *v, sqlite3_int64 *t) { (void)v; return root->xCurrentTimeInt64(root, t); }
static int mmSetSystemCall(sqlite3_vfs *v, const char *name, sqlite3_syscall_ptr ptr) { (void)v; return root->xSetSystemCall(root, name, ptr); }
static sqlite3_syscall_ptr mmGetSystemCall(sqlite3_vfs *v, const char *name) { (void)v; return root->xGetSystemCall(root, name); }
static const char *mmNextSystemCall(sqlite3_vfs *v, const char *name) { (void)v; return root->xNextSystemCall(root, name); }

static void statsFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  (void)argc;
  (void)argv;
  char *json = sqlite3_mprintf(
      "{\"vfs\":\"%s\",\"default\":%d,\"wal_writes\":%lld,\"flushes\":%lld,\"commit_flushes\":%lld,\"header_rewrites\":%lld,\"late_flushes\":%lld}", VFS_NAME,
      sqlite3_vfs_find(0) == &mmVfs, __atomic_load_n(&statWalWrites, __ATOMIC_RELAXED), __atomic_load_n(&statFlushes, __ATOMIC_RELAXED),
      __atomic_load_n(&statCommitFlushes, __ATOMIC_RELAXED), __atomic_load_n(&statRewrites, __ATOMIC_RELAXED),
      __atomic_load_n(&statLateFlushes, __ATOMIC_RELAXED));
  if (!json) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_text(ctx, json, -1, sqlite3_free);
}

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_mailmuxvfs_init(sqlite3 *db, char **errMsg, const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api);
  (void)errMsg;
  int rc = sqlite3_create_function(db, "mailmux_vfs_stats", 0, SQLITE_UTF8, 0, statsFunc, 0, 0);
  if (rc != SQLITE_OK) return rc;
  if (sqlite3_vfs_find(VFS_NAME)) return SQLITE_OK_LOAD_PERMANENTLY;  /* registered by an earlier load */
  root = sqlite3_vfs_find(0);
  if (!root) return SQLITE_ERROR;
  mmVfs = (sqlite3_vfs){
      .iVersion = root->iVersion < 3 ? root->iVersion : 3,
      .szOsFile = (int)sizeof(MmFile) + root->szOsFile,
      .mxPathname = root->mxPathname,
      .zName = VFS_NAME,
      .xOpen = mmOpen,
      .xDelete = mmDelete,
      .xAccess = mmAccess,
      .xFullPathname = mmFullPathname,
      .xDlOpen = mmDlOpen,
      .xDlError = mmDlError,
      .xDlSym = mmDlSym,
      .xDlClose = mmDlClose,
      .xRandomness = mmRandomness,
      .xSleep = mmSleep,
      .xCurrentTime = mmCurrentTime,
      .xGetLastError = mmGetLastError,
      .xCurrentTimeInt64 = mmCurrentTimeInt64,
      .xSetSystemCall = mmSetSystemCall,
      .xGetSystemCall = mmGetSystemCall,
      .xNextSystemCall = mmNextSystemCall,
  };
  mmMethods = (sqlite3_io_methods){
      .iVersion = 3,
      .xClose = mmClose,
      .xRead = mmRead,
      .xWrite = mmWrite,
      .xTruncate = mmTruncate,
      .xSync = mmSync,
      .xFileSize = mmFileSize,
      .xLock = mmLock,
      .xUnlock = mmUnlock,
      .xCheckReservedLock = mmCheckReservedLock,
      .xFileControl = mmFileControl,
      .xSectorSize = mmSectorSize,
      .xDeviceCharacteristics = mmDeviceCharacteristics,
      .xShmMap = mmShmMap,
      .xShmLock = mmShmLock,
      .xShmBarrier = mmShmBarrier,
      .xShmUnmap = mmShmUnmap,
      .xFetch = mmFetch,
      .xUnfetch = mmUnfetch,
  };
  mmMethodsV1 = mmMethods;
  mmMethodsV1.iVersion = 1;
  rc = sqlite3_vfs_register(&mmVfs, 1);
  return rc == SQLITE_OK ? SQLITE_OK_LOAD_PERMANENTLY : rc;
}
