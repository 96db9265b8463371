// Messages: the index rows of stored mail, their large immutable parts (message_contents), their
// folder membership (with IMAP UIDs, and as folder_ids on the row), keywords and full-text
// entries. Every write appends to the change log in the caller's transaction, and keeps the
// counters (folders, mailbox_message_counts, threads, thread_folders) exact.
import { CompiledQuery, sql } from 'kysely';
import type { MessageContentsTable, MessagesTable } from '../schema.ts';
import type { Dialect } from '../dialect.ts';
import type { RepoContext } from './common.ts';
import { ChangesRepo, type ChangeEntry } from './changes.ts';
import { MailboxesRepo } from './mailboxes.ts';
import { threadRow, ThreadsRepo, type NewThread, type ThreadFirst } from './threads.ts';
import { insertRows, rowShape, runCompiled, runSql } from './compiled.ts';
import { mailboxSearchToken, NON_WORD, SEARCH_KEY_SLOTS, searchKeyFloor } from './message-query.ts';

/**
 * A message as the services see it: its index row and its contents (message_contents). Summary
 * reads (message-query.ts) fill only the index columns they need. folder_ids is written by this
 * repo from the folders a message is put in, so writers leave it out.
 */
export type MessageRow = Omit<MessagesTable, 'folder_ids'> & Omit<MessageContentsTable, 'message_id'> & { folder_ids?: string };

/** The columns of a MessageRow that live in message_contents. */
export const CONTENT_COLUMNS = ['headers_text', 'references', 'headers', 'imap', 'text_body', 'html_body', 'auth_results'] as const;

/** Splits a full row into its messages row (with folder_ids) and its message_contents row. */
function splitRow(row: MessageRow & { modseq: number }, folderIds: readonly string[]): { index: MessagesTable; contents: MessageContentsTable } {
  const { headers_text, references, headers, imap, text_body, html_body, auth_results, folder_ids: _, ...rest } = row;
  return {
    index: { ...rest, folder_ids: folderIdsText(folderIds) },
    contents: { message_id: row.id, headers_text, references, headers, imap, text_body, html_body, auth_results },
  };
}

/** The join of message_contents to messages: the same rowid on SQLite, the message id on PostgreSQL (migration 010). */
export function contentsJoin(dialect: Dialect, contents = 'message_contents') {
  return dialect === 'sqlite' ? sql<boolean>`${sql.table(contents)}.rowid = messages.rowid` : sql<boolean>`${sql.table(contents)}.message_id = messages.id`;
}

/** messages.folder_ids: the ids sorted (code-unit order) and comma-separated. */
export function folderIdsText(folderIds: readonly string[]): string {
  return [...new Set(folderIds)].sort().join(',');
}

/** SQLite: the highest search key taken in a 10 ms slice, and the full-text row of a message. */
const SQLITE_TOP_KEY = 'SELECT max(rowid) AS k FROM messages WHERE rowid >= ? AND rowid < ?';
const SQLITE_FTS_INSERT = 'INSERT INTO messages_fts(rowid, mbx, subject, addresses, body) VALUES (?, ?, ?, ?, ?)';

/**
 * SQLite: the full-text rows of a transaction's new messages (by its RepoContext, which every repo
 * of the transaction shares), written at its end (beforeCommit). FTS5 keeps the rows a transaction
 * adds in memory and writes them as one new segment at the COMMIT, but it must write them out at
 * every statement that opens a statement journal (an UPDATE, an upsert, a multi-row INSERT: SQLite
 * opens a savepoint for it, and FTS5 flushes at each savepoint). Written among a delivery's other
 * statements, each message's row became a segment of its own; written last, a batch's rows make one.
 */
const pendingFts = new WeakMap<RepoContext, unknown[][]>();

export interface MessageInsert {
  row: MessageRow;
  folderIds: string[];
  /**
   * First UID per folder, allocated by the caller. PostgreSQL, in a transaction: when none is given
   * (FoldersRepo.entryByRole), the insert reserves each folder's and counts it (then counted.folders
   * is false).
   */
  uids: Map<string, number>;
  /** The full-text fields, folded by the caller (foldForSearch). */
  search: { subject: string; addresses: string; body: string };
  /**
   * Counters the caller has moved for this message already: its folders' totals
   * (FoldersRepo.enterByRole) and its thread's (a thread made for it, ThreadsRepo.insert with
   * `first`). The rest are moved here.
   */
  counted?: { folders: boolean; thread: boolean };
  /**
   * A thread made for this message (row.thread_id), written with it and counted with it: its
   * counters start at this message (then `counted.thread` is implied).
   */
  thread?: { row: NewThread; first: ThreadFirst };
  /** Bytes to add to the mailbox's used bytes with this message (its size: ingest's quota accounting). */
  usedBytes?: number;
}

/**
 * PostgreSQL: a message's tsvector (messages.search) in its text form, bound as `$n::tsvector`: the
 * distinct words of its subject, addresses and body (folded by the caller), split as a query is
 * (NON_WORD, searchWords). So a message is found by any word of it or of its sender's address, as
 * with SQLite's FTS5; PostgreSQL's parser would keep an address, a host name or 2026-11 as one
 * lexeme. Queries are tsquery literals of the same words (message-query.ts).
 * Made here rather than by to_tsvector, whose parse of a 10 KB message took ~1.7 ms of the server's
 * CPU, the largest cost of a delivery on PostgreSQL. For words split this way it gives the same
 * lexemes (test/store/message-insert-pg.test.ts compares them), so vectors stored before still
 * match. Searches use no positions or weights: the vector has none. Words over PostgreSQL's lexeme
 * limit are left out, as to_tsvector leaves them out.
 */
export function pgSearchVector(search: MessageInsert['search']): string {
  const words = new Set<string>();
  for (const text of [search.subject, search.addresses, search.body]) {
    for (const w of text.split(NON_WORD)) {
      if (w !== '' && lexemeFits(w)) words.add(w);
    }
  }
  return [...words].map(pgLexeme).join(' ');
}

/**
 * PostgreSQL: the tsquery of a search's words (searchWords), all of them required, as pgSearchVector
 * indexes them; null when a word is too long to have been indexed (then nothing matches).
 */
export function pgSearchQuery(words: string[]): string | null {
  return words.some((w) => !lexemeFits(w)) ? null : words.map(pgLexeme).join(' & ');
}

function lexemeFits(word: string): boolean {
  return word.length <= PG_LEXEME_MAX_BYTES / 3 || Buffer.byteLength(word) <= PG_LEXEME_MAX_BYTES;
}

/** A word as tsvector and tsquery input read it: quoted, quotes and backslashes doubled. */
function pgLexeme(word: string): string {
  return `'${word.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}

/** The longest lexeme PostgreSQL keeps, in bytes (to_tsvector drops longer words, tsvector input refuses them). */
const PG_LEXEME_MAX_BYTES = 2046;

/** What MessageInsert's caller counted already: a thread made with the message counts it. */
function countedOf(m: MessageInsert): { folders: boolean; thread: boolean } {
  return { folders: m.counted?.folders === true, thread: m.counted?.thread === true || m.thread !== undefined };
}

/**
 * PostgreSQL: the WITH queries that move a new message's counters (its folders' totals, unless
 * counted; thread_folders; mailbox_message_counts; its thread's, unless counted), values bound by
 * `bind`. Both of MessagesRepo.insert's PostgreSQL paths use them. `reserveUids`: the folders'
 * UIDs are taken too, returned by `f` as (id, uid).
 */
function pgCounterCtes(bind: Bind, m: MessageInsert, row: Pick<MessageRow, 'seen' | 'thread_id' | 'mailbox_id' | 'has_attachments'>, counted: { folders: boolean; thread: boolean }, reserveUids = false): string[] {
  const unread = row.seen === 1 ? 0 : 1;
  const folderIds = m.folderIds.map((id) => bind(id)).join(', ');
  const ctes = [
    counted.folders
      ? `f AS (SELECT id FROM folders WHERE id IN (${folderIds}))`
      : reserveUids
        ? `f AS (UPDATE folders SET next_uid = next_uid + 1, total_messages = total_messages + 1, unread_messages = unread_messages + ${bind(unread)} WHERE id IN (${folderIds}) RETURNING id, next_uid - 1 AS uid)`
        : `f AS (UPDATE folders SET total_messages = total_messages + 1, unread_messages = unread_messages + ${bind(unread)} WHERE id IN (${folderIds}) RETURNING id)`,
    `tf AS (INSERT INTO thread_folders (thread_id, folder_id, mailbox_id, n) SELECT ${bind(row.thread_id)}, f.id, ${bind(row.mailbox_id)}, 1 FROM f
      ON CONFLICT (thread_id, folder_id) DO UPDATE SET n = thread_folders.n + 1 RETURNING 1)`,
    `mc AS (INSERT INTO mailbox_message_counts (mailbox_id, total, unread) VALUES (${bind(row.mailbox_id)}, 1, ${bind(unread)})
      ON CONFLICT (mailbox_id) DO UPDATE SET total = mailbox_message_counts.total + 1, unread = mailbox_message_counts.unread + EXCLUDED.unread RETURNING 1)`,
  ];
  if (!counted.thread) {
    ctes.push(`th AS (UPDATE threads SET message_count = message_count + 1, unread_count = unread_count + ${bind(unread)}, attachment_count = attachment_count + ${bind(row.has_attachments === 1 ? 1 : 0)} WHERE id = ${bind(row.thread_id)} RETURNING 1)`);
  }
  return ctes;
}

/** A value bound to a statement being written: its placeholder ($1, $2, ...). */
type Bind = (value: unknown) => string;

export interface FolderMembership {
  message_id: string;
  folder_id: string;
  uid: number;
}

export class MessagesRepo {
  private readonly ctx: RepoContext;
  private readonly changes: ChangesRepo;
  private readonly mailboxes: MailboxesRepo;
  private readonly threads: ThreadsRepo;
  /**
   * SQLite, inside a transaction: the last search key it took in each 10 ms slice. Nothing else
   * inserts messages while it holds the write lock, so the next key in a slice is that one + 1
   * without reading the index again (a batch's deliveries often share a slice).
   */
  private readonly topKeys = new Map<number, number>();
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
    this.changes = new ChangesRepo(ctx);
    this.mailboxes = new MailboxesRepo(ctx);
    this.threads = new ThreadsRepo(ctx);
  }

  private insertFts(params: unknown[]): void {
    let rows = pendingFts.get(this.ctx);
    if (!rows) {
      rows = [];
      pendingFts.set(this.ctx, rows);
      this.ctx.beforeCommit?.(() => this.flushFts());
    }
    rows.push(params);
  }

  private async flushFts(): Promise<void> {
    const rows = pendingFts.get(this.ctx);
    pendingFts.delete(this.ctx);
    for (const params of rows ?? []) await runSql(this.ctx.db, SQLITE_FTS_INSERT, params);
  }

  async insert(m: MessageInsert): Promise<void> {
    const db = this.ctx.db;
    const dialect = this.ctx.dialect;
    const search = m.search;
    const change = { mailboxId: m.row.mailbox_id, type: 'message', objectId: m.row.id, kind: 'created' } as const;
    // PostgreSQL, where the write-order lock is held (a transaction took it first): one statement.
    if (dialect === 'postgres' && m.folderIds.length > 0 && this.ctx.inTransaction) {
      await this.insertPgAtOnce(m, change);
      return;
    }
    if (m.folderIds.some((id) => !m.uids.has(id))) throw new Error('messages.insert: a UID for every folder');
    if (m.thread) await this.threads.insert(m.thread.row, m.thread.first);
    // The change comes first so the row is written once, already carrying its modseq.
    const modseq = await this.changes.append(change);
    const row = { ...m.row, modseq };
    const { index, contents } = splitRow(row, m.folderIds);
    // Every statement below is compiled once per shape (compiled.ts): ingest runs them per message.
    if (dialect === 'postgres') {
      const { columns, values } = rowShape(index);
      const vector = pgSearchVector(search);
      await runCompiled(db, dialect, `messages.insert (${columns})`, (d) => d.insertInto('messages').values({ ...index, search: sql`${vector}::tsvector` } as unknown as MessagesTable), [...values, vector]);
      await insertRows(db, dialect, 'message_contents', contents);
    } else {
      // The rowid is the search key: a free slot in the 10 ms slice of received_at (message-query.ts).
      const floor = searchKeyFloor(row.received_at);
      let top: number | bigint | null | undefined = this.ctx.inTransaction ? this.topKeys.get(floor) : undefined;
      // Keys are bound as integers (a JS number is bound as a float).
      top ??= (await runSql<{ k: number | bigint | null }>(db, SQLITE_TOP_KEY, [BigInt(floor), BigInt(floor + SEARCH_KEY_SLOTS)])).rows[0]?.k ?? null;
      const key = top === null ? floor : Number(top) + 1;
      if (key >= floor + SEARCH_KEY_SLOTS) throw new Error(`more than ${SEARCH_KEY_SLOTS} messages received in one 10 ms slice`);
      if (this.ctx.inTransaction) this.topKeys.set(floor, key);
      await insertRows(db, dialect, 'messages', { ...index, rowid: BigInt(key) });
      this.insertFts([BigInt(key), mailboxSearchToken(row.mailbox_id), search.subject, search.addresses, search.body]);
      if (!this.ctx.beforeCommit) await this.flushFts();
      // Same rowid as the messages row (migration 010): appended in about received order, no index of its own.
      await insertRows(db, dialect, 'message_contents', { ...contents, rowid: BigInt(key) });
    }
    for (const folderId of m.folderIds) {
      await insertRows(db, dialect, 'message_folders', { message_id: row.id, folder_id: folderId, mailbox_id: row.mailbox_id, uid: m.uids.get(folderId) ?? 0, received_at: row.received_at, seen: row.seen });
    }
    const keywords = JSON.parse(row.keywords) as string[];
    if (keywords.length > 0) {
      await insertRows(
        db,
        dialect,
        'message_keywords',
        keywords.map((keyword) => ({ message_id: row.id, mailbox_id: row.mailbox_id, keyword })),
      );
    }
    if (m.usedBytes !== undefined) await this.mailboxes.addUsedBytes(row.mailbox_id, m.usedBytes);
    const unread = row.seen === 1 ? 0 : 1;
    const counted = countedOf(m);
    if (dialect === 'postgres' && m.folderIds.length > 0) {
      // Every counter in one statement: one round trip per message instead of four. Those the
      // caller counted (MessageInsert.counted) are left alone.
      const params: unknown[] = [];
      const ctes = pgCounterCtes((v) => `$${params.push(v)}`, m, row, counted);
      await runSql(db, `WITH ${ctes.join(',\n')}\nSELECT 1`, params);
      return;
    }
    await this.countFolders(row, m.folderIds, 1, unread, counted.folders);
    await runCompiled(
      db,
      dialect,
      'messages.count_mailbox_insert',
      (d) =>
        d
          .insertInto('mailbox_message_counts')
          .values({ mailbox_id: row.mailbox_id, total: 1, unread })
          .onConflict((oc) => oc.column('mailbox_id').doUpdateSet((eb) => ({ total: eb('mailbox_message_counts.total', '+', 1), unread: eb('mailbox_message_counts.unread', '+', unread) }))),
      [row.mailbox_id, 1, unread, 1, unread],
    );
    if (counted.thread) return;
    const attachments = row.has_attachments === 1 ? 1 : 0;
    await runCompiled(
      db,
      dialect,
      'messages.count_thread_insert',
      (d) =>
        d
          .updateTable('threads')
          .set((eb) => ({ message_count: eb('message_count', '+', 1), unread_count: eb('unread_count', '+', unread), attachment_count: eb('attachment_count', '+', attachments) }))
          .where('id', '=', row.thread_id),
      [1, unread, attachments, row.thread_id],
    );
  }

  /**
   * PostgreSQL, in a transaction (which holds the write-order lock): a new message's change (whose
   * id is its modseq), its rows (messages, message_contents, message_folders, message_keywords, and
   * the thread made for it) and every counter it moves (with usedBytes, its mailbox's too), in one
   * statement of data-modifying WITH queries: one round trip instead of up to eight. Ingest writes
   * one batch at a time, each statement of it a round trip to the server and back (0.3-1.1 ms under
   * load): these were about two thirds of a message's share of its batch (receive +34 %,
   * bench/RESULTS.md). The text is made once per shape (its columns, the number of folders and
   * keywords, what the caller counted) and runs as a prepared statement. It writes what the
   * separate statements below write (test/store/message-insert-pg.test.ts). Given no UIDs, it
   * reserves the folders' UIDs too (FoldersRepo.entryByRole).
   */
  private async insertPgAtOnce(m: MessageInsert, change: ChangeEntry): Promise<void> {
    // The message's change is appended by the statement too; its id is the row's modseq.
    const row = { ...m.row, modseq: 0 };
    const { index, contents } = splitRow(row, m.folderIds);
    const params: unknown[] = [];
    /** Binds a value: its placeholder in the text. */
    const p: Bind = (v) => `$${params.push(v)}`;
    const shape: string[] = [];
    const insert = (table: string, rows: readonly Record<string, unknown>[]): string => {
      const columns = Object.keys(rows[0]!).filter((k) => rows[0]![k] !== undefined);
      shape.push(`${table}(${columns.join(',')})x${rows.length}`);
      // A value that is a function writes its own SQL (an expression, with values it binds).
      const values = rows.map((r) => `(${columns.map((c) => (typeof r[c] === 'function' ? (r[c] as (bind: Bind) => string)(p) : p(r[c]))).join(', ')})`);
      return `INSERT INTO ${table} (${columns.map((c) => `"${c}"`).join(', ')}) VALUES ${values.join(', ')}`;
    };
    const search = (q: Bind): string => `${q(pgSearchVector(m.search))}::tsvector`;
    const ctes: string[] = [];
    if (m.thread) ctes.push(`t AS (${insert('threads', [threadRow(m.thread.row, m.thread.first) as unknown as Record<string, unknown>])})`);
    // The counters, as the separate path moves them (those the caller counted are left alone), and
    // the folders' UIDs when the caller reserved none (FoldersRepo.entryByRole): `f` comes before
    // message_folders, which reads them from it.
    const counted = countedOf(m);
    const reserve = m.folderIds.some((id) => !m.uids.has(id));
    if (reserve && (counted.folders || m.folderIds.some((id) => m.uids.has(id)))) throw new Error('messages.insert: UIDs for all folders or for none, and uncounted folders when none');
    shape.push(`counted ${counted.folders ? 1 : 0}${counted.thread ? 1 : 0}${reserve ? ' reserve' : ''}`);
    ctes.push(...pgCounterCtes(p, m, row, counted, reserve));
    ctes.push(
      `ch AS (${insert('changes', [this.changes.row(change)])} RETURNING change_id)`,
      `m AS (${insert('messages', [{ ...index, modseq: () => '(SELECT change_id FROM ch)', search }])})`,
      `c AS (${insert('message_contents', [contents as unknown as Record<string, unknown>])})`,
      `mf AS (${insert('message_folders', m.folderIds.map((folderId) => ({ message_id: row.id, folder_id: folderId, mailbox_id: row.mailbox_id, uid: reserve ? (q: Bind) => `(SELECT uid FROM f WHERE id = ${q(folderId)})` : m.uids.get(folderId), received_at: row.received_at, seen: row.seen })))})`,
    );
    const keywords = JSON.parse(row.keywords) as string[];
    if (keywords.length > 0) ctes.push(`k AS (${insert('message_keywords', keywords.map((keyword) => ({ message_id: row.id, mailbox_id: row.mailbox_id, keyword })))})`);
    if (m.usedBytes !== undefined) {
      shape.push('used');
      ctes.push(`ub AS (UPDATE mailboxes SET used_bytes = used_bytes + ${p(m.usedBytes)} WHERE id = ${p(row.mailbox_id)} RETURNING 1)`);
    }
    // A data-modifying WITH runs whether or not the main statement reads it.
    const text = `WITH ${ctes.join(',\n')}\nSELECT 1`;
    await runCompiled(this.ctx.db, 'postgres', `messages.insert.pg ${shape.join(' ')}`, () => ({ compile: () => CompiledQuery.raw(text, params) }), params);
  }

  /**
   * A message enters (+1) or leaves (-1) these folders: the folders' and its thread's per-folder
   * counters. `foldersCounted`: the folders' own totals have moved already (FoldersRepo.enterByRole).
   */
  private async countFolders(row: Pick<MessageRow, 'id' | 'thread_id' | 'mailbox_id'>, folderIds: string[], delta: 1 | -1, unread: number, foldersCounted = false): Promise<void> {
    const db = this.ctx.db;
    for (const folderId of folderIds) {
      const unreadDelta = delta * unread;
      if (!foldersCounted) await runCompiled(
        db,
        this.ctx.dialect,
        'messages.count_folder',
        (d) => d.updateTable('folders').set((eb) => ({ total_messages: eb('total_messages', '+', delta), unread_messages: eb('unread_messages', '+', unreadDelta) })).where('id', '=', folderId),
        [delta, unreadDelta, folderId],
      );
      if (delta === 1) {
        await runCompiled(
          db,
          this.ctx.dialect,
          'messages.count_thread_folder_enter',
          (d) =>
            d
              .insertInto('thread_folders')
              .values({ thread_id: row.thread_id, folder_id: folderId, mailbox_id: row.mailbox_id, n: 1 })
              .onConflict((oc) => oc.columns(['thread_id', 'folder_id']).doUpdateSet((eb) => ({ n: eb('thread_folders.n', '+', 1) }))),
          [row.thread_id, folderId, row.mailbox_id, 1, 1],
        );
      } else {
        await db.updateTable('thread_folders').set((eb) => ({ n: eb('n', '-', 1) })).where('thread_id', '=', row.thread_id).where('folder_id', '=', folderId).execute();
        await db.deleteFrom('thread_folders').where('thread_id', '=', row.thread_id).where('folder_id', '=', folderId).where('n', '<=', 0).execute();
      }
    }
  }

  /** The flags the counters depend on, as stored now (the caller's row may be older). */
  private async current(id: string): Promise<Pick<MessageRow, 'id' | 'thread_id' | 'mailbox_id' | 'seen' | 'has_attachments'> | undefined> {
    return this.ctx.db.selectFrom('messages').select(['id', 'thread_id', 'mailbox_id', 'seen', 'has_attachments']).where('id', '=', id).executeTakeFirst();
  }

  /** messages joined with message_contents: whole rows. */
  private full() {
    return this.ctx.db
      .selectFrom('messages')
      .innerJoin('message_contents', (j) => j.on(contentsJoin(this.ctx.dialect)))
      .selectAll('messages')
      .select(CONTENT_COLUMNS.map((c) => `message_contents.${c}` as const));
  }

  async get(id: string): Promise<MessageRow | undefined> {
    return this.full().where('messages.id', '=', id).executeTakeFirst();
  }

  async getMany(mailboxId: string, ids: string[]): Promise<MessageRow[]> {
    if (ids.length === 0) return [];
    // The mailbox is checked here, not in SQL: with both, SQLite may walk the mailbox's index instead of the ids.
    const rows = await this.full().where('messages.id', 'in', ids).execute();
    return rows.filter((r) => r.mailbox_id === mailboxId);
  }

  async byRfcMessageIds(mailboxId: string, rfcIds: string[]): Promise<{ id: string; thread_id: string; rfc_message_id: string | null }[]> {
    if (rfcIds.length === 0) return [];
    const r = await runCompiled<{ id: string; thread_id: string; rfc_message_id: string | null }>(
      this.ctx.db,
      this.ctx.dialect,
      `messages.by_rfc_ids x${rfcIds.length}`,
      (d) => d.selectFrom('messages').select(['id', 'thread_id', 'rfc_message_id']).where('mailbox_id', '=', mailboxId).where('rfc_message_id', 'in', rfcIds),
      [mailboxId, ...rfcIds],
    );
    return r.rows;
  }

  async folderIdsOf(messageIds: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (messageIds.length === 0) return out;
    const rows = await this.ctx.db.selectFrom('message_folders').select(['message_id', 'folder_id']).where('message_id', 'in', messageIds).execute();
    for (const r of rows) out.set(r.message_id, [...(out.get(r.message_id) ?? []), r.folder_id]);
    return out;
  }

  async memberships(messageId: string): Promise<FolderMembership[]> {
    return this.ctx.db.selectFrom('message_folders').select(['message_id', 'folder_id', 'uid']).where('message_id', '=', messageId).execute();
  }

  /** Replaces keywords and the flag columns; returns the new modseq. */
  async setKeywords(row: MessageRow, keywords: string[], updatedAt: string): Promise<number> {
    const db = this.ctx.db;
    const before = new Set(JSON.parse(row.keywords) as string[]);
    const after = new Set(keywords);
    const added = [...after].filter((k) => !before.has(k));
    const removed = [...before].filter((k) => !after.has(k));
    if (added.length > 0) await db.insertInto('message_keywords').values(added.map((keyword) => ({ message_id: row.id, mailbox_id: row.mailbox_id, keyword }))).execute();
    if (removed.length > 0) await db.deleteFrom('message_keywords').where('message_id', '=', row.id).where('keyword', 'in', removed).execute();
    const seen = after.has('$seen') ? 1 : 0;
    // The counters move from the stored flag, whatever the caller's row says.
    const storedSeen = (await this.current(row.id))?.seen ?? row.seen;
    const changeId = await this.changes.append({ mailboxId: row.mailbox_id, type: 'message', objectId: row.id, kind: 'updated' });
    await db
      .updateTable('messages')
      .set({
        keywords: JSON.stringify([...after].sort()),
        seen,
        flagged: after.has('$flagged') ? 1 : 0,
        answered: after.has('$answered') ? 1 : 0,
        draft: after.has('$draft') ? 1 : 0,
        modseq: changeId,
        updated_at: updatedAt,
      })
      .where('id', '=', row.id)
      .execute();
    if (seen !== storedSeen) {
      await db.updateTable('message_folders').set({ seen }).where('message_id', '=', row.id).execute();
      const d = seen === 1 ? -1 : 1;
      await db
        .updateTable('folders')
        .set((eb) => ({ unread_messages: eb('unread_messages', '+', d) }))
        .where('id', 'in', (eb) => eb.selectFrom('message_folders').select('folder_id').where('message_id', '=', row.id))
        .execute();
      await db.updateTable('mailbox_message_counts').set((eb) => ({ unread: eb('unread', '+', d) })).where('mailbox_id', '=', row.mailbox_id).execute();
      await db.updateTable('threads').set((eb) => ({ unread_count: eb('unread_count', '+', d) })).where('id', '=', row.thread_id).execute();
    }
    return changeId;
  }

  /** Moves a message into exactly these folders (new UIDs where it enters a folder). */
  async setFolders(row: MessageRow, folderIds: string[], uids: Map<string, number>, updatedAt: string): Promise<void> {
    const db = this.ctx.db;
    const current = await this.memberships(row.id);
    const keep = new Set(folderIds);
    const have = new Set(current.map((c) => c.folder_id));
    const leaving = current.filter((c) => !keep.has(c.folder_id)).map((c) => c.folder_id);
    const entering = folderIds.filter((folderId) => !have.has(folderId));
    const flags = (await this.current(row.id)) ?? row;
    if (leaving.length > 0) await db.deleteFrom('message_folders').where('message_id', '=', row.id).where('folder_id', 'in', leaving).execute();
    for (const folderId of entering) {
      await db
        .insertInto('message_folders')
        .values({ message_id: row.id, folder_id: folderId, mailbox_id: row.mailbox_id, uid: uids.get(folderId) ?? 0, received_at: row.received_at, seen: flags.seen })
        .execute();
    }
    await this.countFolders(flags, leaving, -1, flags.seen === 1 ? 0 : 1);
    await this.countFolders(flags, entering, 1, flags.seen === 1 ? 0 : 1);
    const changeId = await this.changes.append({ mailboxId: row.mailbox_id, type: 'message', objectId: row.id, kind: 'updated' });
    await db.updateTable('messages').set({ modseq: changeId, folder_ids: folderIdsText(folderIds), updated_at: updatedAt }).where('id', '=', row.id).execute();
  }

  /** Destroys the index row and everything hanging off it; the caller decides about the blob. */
  async destroy(row: MessageRow): Promise<void> {
    const db = this.ctx.db;
    const cur = await this.current(row.id);
    if (cur) {
      const unread = cur.seen === 1 ? 0 : 1;
      await this.countFolders(cur, (await this.memberships(row.id)).map((m) => m.folder_id), -1, unread);
      await db.updateTable('mailbox_message_counts').set((eb) => ({ total: eb('total', '-', 1), unread: eb('unread', '-', unread) })).where('mailbox_id', '=', cur.mailbox_id).execute();
      // An empty mailbox has no row (a missing row counts zero): a purged mailbox leaves nothing behind.
      await db.deleteFrom('mailbox_message_counts').where('mailbox_id', '=', cur.mailbox_id).where('total', '<=', 0).execute();
      await db
        .updateTable('threads')
        .set((eb) => ({ message_count: eb('message_count', '-', 1), unread_count: eb('unread_count', '-', unread), attachment_count: eb('attachment_count', '-', cur.has_attachments === 1 ? 1 : 0) }))
        .where('id', '=', cur.thread_id)
        .execute();
    }
    if (this.ctx.dialect === 'sqlite') {
      // A row this transaction has not written yet goes in first, so the delete finds it.
      await this.flushFts();
      await sql`DELETE FROM messages_fts WHERE rowid = (SELECT rowid FROM messages WHERE id = ${row.id})`.execute(db);
    }
    await db.deleteFrom('message_folders').where('message_id', '=', row.id).execute();
    await db.deleteFrom('message_keywords').where('message_id', '=', row.id).execute();
    if (this.ctx.dialect === 'sqlite') await sql`DELETE FROM message_contents WHERE rowid = (SELECT rowid FROM messages WHERE id = ${row.id})`.execute(db);
    else await db.deleteFrom('message_contents').where('message_id', '=', row.id).execute();
    await db.deleteFrom('messages').where('id', '=', row.id).execute();
    await this.changes.append({ mailboxId: row.mailbox_id, type: 'message', objectId: row.id, kind: 'destroyed' });
  }

  async blobInUse(sha256: string): Promise<boolean> {
    const r = await this.ctx.db.selectFrom('messages').select('id').where('blob_sha256', '=', sha256).limit(1).executeTakeFirst();
    return r !== undefined;
  }

  async idsForMailbox(mailboxId: string, limit: number): Promise<MessageRow[]> {
    return this.full().where('messages.mailbox_id', '=', mailboxId).limit(limit).execute();
  }

  /**
   * The newest `max` messages of each thread (id, received_at, addresses), newest first: one
   * statement, an index range of at most `max` rows per thread however long the thread is.
   */
  async newestInThreads(threadIds: string[], max: number): Promise<{ thread_id: string; id: string; received_at: string; addresses: string; modseq: number }[]> {
    if (threadIds.length === 0) return [];
    const rows =
      this.ctx.dialect === 'postgres'
        ? await sql<{ thread_id: string; id: string; received_at: string; addresses: string; modseq: number }>`
            SELECT x.thread_id, x.id, x.received_at, x.addresses, x.modseq FROM threads t CROSS JOIN LATERAL (
              SELECT y.thread_id, y.id, y.received_at, y.addresses, y.modseq FROM messages y WHERE y.thread_id = t.id ORDER BY y.received_at DESC, y.id DESC LIMIT ${max}) x
            WHERE t.id IN (${sql.join(threadIds)})`.execute(this.ctx.db)
        : await sql<{ thread_id: string; id: string; received_at: string; addresses: string; modseq: number }>`
            SELECT x.thread_id, x.id, x.received_at, x.addresses, x.modseq FROM threads t JOIN messages x
              ON x.id IN (SELECT y.id FROM messages y WHERE y.thread_id = t.id ORDER BY y.received_at DESC, y.id DESC LIMIT ${max})
            WHERE t.id IN (${sql.join(threadIds)})`.execute(this.ctx.db);
    return rows.rows.sort((a, b) => (a.received_at === b.received_at ? (a.id < b.id ? 1 : -1) : a.received_at < b.received_at ? 1 : -1));
  }

  /** The folders any message of each thread is in (thread_folders, kept by every write). */
  async threadFolders(threadIds: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    if (threadIds.length === 0) return out;
    const rows = await this.ctx.db.selectFrom('thread_folders').select(['thread_id', 'folder_id']).where('thread_id', 'in', threadIds).orderBy('thread_id').orderBy('folder_id').execute();
    for (const r of rows) out.set(r.thread_id, [...(out.get(r.thread_id) ?? []), r.folder_id]);
    return out;
  }

  /** Ids and versions of a thread's messages in order (ids only, however long the thread). */
  async threadMessageIds(threadId: string): Promise<{ id: string; modseq: number }[]> {
    return this.ctx.db.selectFrom('messages').select(['id', 'modseq']).where('thread_id', '=', threadId).orderBy('received_at', 'asc').orderBy('id', 'asc').execute();
  }
}
