// The message filter set of the Mailbox API (list, count, snippets, query-changes) as SQL, with
// keyset pagination for every sort. Full text: SQLite FTS5 or PostgreSQL tsvector, the same
// semantics (every word must occur; words are matched whole, case- and accent-insensitively).
// A list query's SQL is compiled by Kysely once per shape (which filters, sort, cursor, columns;
// repos/compiled.ts), then run with each call's values: in a server running every kind of query, building and
// compiling a list query cost ~170 µs of a ~600 µs list request (measured: bench/RESULTS.md).
import { sql, type SelectQueryBuilder } from 'kysely';
import type { Database } from '../schema.ts';
import type { RepoContext } from './common.ts';
import { runCompiled, type Compilable } from './compiled.ts';
import { CONTENT_COLUMNS, contentsJoin, pgSearchQuery, type MessageRow } from './messages.ts';

export interface MessageFilter {
  mailboxId: string;
  folderId?: string;
  threadId?: string;
  q?: string;
  from?: string;
  to?: string;
  cc?: string;
  bcc?: string;
  subject?: string;
  body?: string;
  headerName?: string;
  headerValue?: string;
  minSize?: number;
  maxSize?: number;
  keyword?: string;
  notKeyword?: string;
  after?: string;
  before?: string;
  hasAttachment?: boolean;
  isUnread?: boolean;
  ids?: string[];
}

export const SORT_COLUMNS = {
  received_at: 'received_at',
  sent_at: 'sent_sort',
  subject: 'subject_sort',
  from: 'from_sort',
  to: 'to_sort',
  size_bytes: 'size_bytes',
} as const;
export type SortBy = keyof typeof SORT_COLUMNS;

export interface MessageSort {
  by: SortBy;
  direction: 'asc' | 'desc';
}

type Q = SelectQueryBuilder<Database, 'messages', object>;

/**
 * Folds text for the full-text index and queries alike: lowercase, accents removed (Zürich and
 * Zurich match on both backends; FTS5's remove_diacritics alone would do it only on SQLite).
 */
export function foldForSearch(s: string): string {
  return s.normalize('NFKD').replace(/\p{M}+/gu, '').toLowerCase();
}

/**
 * Between words, for queries and indexed text alike: a word is a run of letters and digits, so an
 * address, a host name or 2026-11 is several words (as SQLite's FTS5 tokenizer splits them).
 */
export const NON_WORD = /[^\p{L}\p{N}]+/gu;

/** Words of a free-text query, folded, without FTS syntax characters. */
export function searchWords(q: string): string[] {
  return foldForSearch(q)
    .split(NON_WORD)
    .filter((w) => w.length > 0)
    .slice(0, 32);
}

/**
 * SQLite: a message's rowid (also its full-text rowid) is its search key: the 10 ms slice of its
 * received_at since 1970 (clamped) times SEARCH_KEY_SLOTS, plus a free slot in that slice. Keys
 * stay below 2^53 (exact JS numbers) until 2144. Key order is received order between slices and
 * arbitrary inside one, so a search reads matches in key order, then sorts the last slice it
 * touched exactly. The epoch is 1970, not a recent year, so mail imported with old receipt dates
 * spreads over its own slices instead of crowding the first one (a slice holds 16,384 messages
 * across the whole store; one more in the same 10 ms is refused).
 */
export const SEARCH_KEY_SLOTS = 16_384;
const SEARCH_KEY_EPOCH_MS = 0;
const SEARCH_KEY_SLICE_MS = 10;
const SEARCH_KEY_SLICES_MAX = Math.floor(2 ** 53 / SEARCH_KEY_SLOTS) - 1;

/** The first search key of the slice `receivedAt` falls in. */
export function searchKeyFloor(receivedAt: string): number {
  const slice = Math.floor((Date.parse(receivedAt) - SEARCH_KEY_EPOCH_MS) / SEARCH_KEY_SLICE_MS);
  return Math.min(Math.max(Number.isFinite(slice) ? slice : 0, 0), SEARCH_KEY_SLICES_MAX) * SEARCH_KEY_SLOTS;
}

/** Rows read past a search page to see whether its last slice is complete. */
const SEARCH_SLICE_SLACK = 8;

function sliceOf(key: number): number {
  return Math.floor(key / SEARCH_KEY_SLOTS);
}

/** The full-text index's mailbox column holds this one token, so a search reads one mailbox's matches. */
export function mailboxSearchToken(mailboxId: string): string {
  return mailboxId.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** An FTS5 query: every word in the text columns, and the mailbox's token in its column. */
function ftsMatch(words: string[], mailboxId: string): string {
  const phrases = words.map((w) => `"${w.replace(/"/g, '""')}"`).join(' AND ');
  return `mbx : "${mailboxSearchToken(mailboxId)}" AND {subject addresses body} : (${phrases})`;
}

/** The substring filters: parameter, column, and a letter for query shapes. */
const TEXT_FILTERS = [
  ['from', 'from_sort', 'F'],
  ['to', 'to_sort', 'T'],
  ['cc', 'cc_text', 'C'],
  ['bcc', 'bcc_text', 'B'],
  ['subject', 'subject_sort', 'S'],
  ['body', 'text_body', 'Y'],
] as const;

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export class MessageQuery {
  private readonly ctx: RepoContext;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
  }

  /** Case-insensitive substring match (LIKE with an explicit escape on both backends). */
  private contains(column: 'from_sort' | 'to_sort' | 'cc_text' | 'bcc_text' | 'subject_sort' | 'text_body' | 'headers_text', needle: string) {
    return this.like(column, `%${escapeLike(needle.toLowerCase())}%`);
  }

  /** The body and the header text are in message_contents (migration 010): one lookup per row tested. */
  private like(column: 'from_sort' | 'to_sort' | 'cc_text' | 'bcc_text' | 'subject_sort' | 'text_body' | 'headers_text', pattern: string) {
    if (column === 'text_body' || column === 'headers_text') {
      const ref = column === 'text_body' ? sql`lower(mc.text_body)` : sql`mc.headers_text`;
      return sql<boolean>`EXISTS (SELECT 1 FROM message_contents mc WHERE ${contentsJoin(this.ctx.dialect, 'mc')} AND ${ref} LIKE ${pattern} ESCAPE '\\')`;
    }
    return sql<boolean>`${sql.ref(`messages.${column}`)} LIKE ${pattern} ESCAPE '\\'`;
  }

  /**
   * SQLite tests a folder filter on the row's folder_ids (sorted ids, comma-separated; an id has no
   * comma) instead of probing message_folders for each row a query walks (−15 to −40 µs a page of
   * 50 of the 100,000-message bench mailbox's Inbox); list pages in received order read the
   * folder's index instead (listByFolder). PostgreSQL keeps the EXISTS, which its planner turns
   * into a join driven by the folder's index when the folder holds few messages (an in-row test
   * there walked the whole mailbox for an empty folder: 9.5 s against 4 ms).
   */
  private folderInRow(folderId: string): boolean {
    return this.ctx.dialect === 'sqlite' && !folderId.includes(',');
  }

  /** Adds the filter's conditions; `ftsJoined`: the query already reads messages_fts (SQLite search path). */
  apply(query: Q, f: MessageFilter, ftsJoined = false): Q {
    let q = query.where('messages.mailbox_id', '=', f.mailboxId);
    if (f.threadId !== undefined) q = q.where('messages.thread_id', '=', f.threadId);
    if (f.ids !== undefined) q = q.where('messages.id', 'in', f.ids.length > 0 ? f.ids : ['']);
    if (f.folderId !== undefined) {
      const folderId = f.folderId;
      if (this.folderInRow(folderId)) q = q.where(sql<boolean>`instr(',' || messages.folder_ids || ',', ${`,${folderId},`}) > 0`);
      else q = q.where((eb) => eb.exists(eb.selectFrom('message_folders').select('message_folders.message_id').whereRef('message_folders.message_id', '=', 'messages.id').where('message_folders.folder_id', '=', folderId)));
    }
    if (f.q !== undefined) {
      const words = searchWords(f.q);
      if (words.length === 0) {
        q = q.where(sql<boolean>`1 = 0`);
      } else if (this.ctx.dialect === 'postgres') {
        // The words as they were indexed (pgSearchVector), not parsed again by the server.
        const tsq = pgSearchQuery(words);
        q = q.where(tsq === null ? sql<boolean>`1 = 0` : sql<boolean>`messages.search @@ ${tsq}::tsquery`);
      } else {
        if (!ftsJoined) q = q.where(sql<boolean>`messages.rowid IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ${ftsMatch(words, f.mailboxId)})`);
      }
    }
    for (const [key, column] of TEXT_FILTERS) {
      const needle = f[key];
      if (typeof needle === 'string' && needle !== '') q = q.where(this.contains(column, needle));
    }
    if (f.headerName !== undefined) {
      // headers_text holds "\nname: value" lines; the value may sit anywhere on the header's line.
      const name = escapeLike(f.headerName.toLowerCase());
      const value = f.headerValue !== undefined ? `%${escapeLike(f.headerValue.toLowerCase())}` : '';
      q = q.where(this.like('headers_text', `%\n${name}:${value}%`));
    }
    if (f.minSize !== undefined) q = q.where('messages.size_bytes', '>=', f.minSize);
    if (f.maxSize !== undefined) q = q.where('messages.size_bytes', '<', f.maxSize);
    if (f.after !== undefined) q = q.where('messages.received_at', '>=', f.after);
    if (f.before !== undefined) q = q.where('messages.received_at', '<', f.before);
    if (f.hasAttachment !== undefined) q = q.where('messages.has_attachments', '=', f.hasAttachment ? 1 : 0);
    if (f.isUnread !== undefined) q = q.where('messages.seen', '=', f.isUnread ? 0 : 1);
    for (const [kw, present] of [
      [f.keyword, true],
      [f.notKeyword, false],
    ] as const) {
      if (kw === undefined) continue;
      const keyword = kw.toLowerCase();
      q = q.where((eb) => {
        const sub = eb.selectFrom('message_keywords').select('message_keywords.message_id').whereRef('message_keywords.message_id', '=', 'messages.id').where('message_keywords.keyword', '=', keyword);
        return present ? eb.exists(sub) : eb.not(eb.exists(sub));
      });
    }
    return q;
  }

  /**
   * Summary rows: the index row's columns a summary needs, its folder ids included (folder_ids: no
   * second read); full rows add message_contents; key rows have only id, modseq and the sort
   * column (a page whose summaries are cached: services/mail/summary-cache.ts).
   */
  private select(columns: ListColumns, base = this.ctx.db.selectFrom('messages'), sortBy: SortBy = 'received_at'): Q {
    if (columns === 'keys') return base.select(KEY_COLUMNS_BY_SORT[sortBy].map((c) => `messages.${c}` as const)) as unknown as Q;
    if (columns === 'full') {
      return base
        .innerJoin('message_contents', (j) => j.on(contentsJoin(this.ctx.dialect)))
        .selectAll('messages')
        .select(CONTENT_COLUMNS.map((c) => `message_contents.${c}` as const)) as unknown as Q;
    }
    return base.select(summaryColumns(sortBy).map((c) => `messages.${c}` as const)) as unknown as Q;
  }

  /**
   * The parameters `apply` binds for this filter, in the order it binds them, and a key naming the
   * filter's shape (which conditions it adds). Mirrors apply: the first compile of each shape
   * compares the two (runCompiled), so a difference fails every test that reaches that shape
   * (test/http/mailbox-query-speed.test.ts reaches every filter).
   */
  private plan(f: MessageFilter, ftsJoined = false): { key: string; params: unknown[] } {
    let key = '';
    const params: unknown[] = [f.mailboxId];
    if (f.threadId !== undefined) {
      key += 't';
      params.push(f.threadId);
    }
    if (f.ids !== undefined) {
      key += `i${f.ids.length}`;
      params.push(...(f.ids.length > 0 ? f.ids : ['']));
    }
    if (f.folderId !== undefined) {
      const inRow = this.folderInRow(f.folderId);
      key += inRow ? 'g' : 'f';
      params.push(inRow ? `,${f.folderId},` : f.folderId);
    }
    if (f.q !== undefined) {
      const words = searchWords(f.q);
      if (words.length === 0) key += 'q0';
      else if (ftsJoined) key += 'Q';
      else if (this.ctx.dialect === 'postgres') {
        // As apply() writes it: a word too long to be indexed matches nothing, with no value bound.
        const tsq = pgSearchQuery(words);
        key += tsq === null ? 'q0' : 'q';
        if (tsq !== null) params.push(tsq);
      } else {
        key += 'q';
        params.push(ftsMatch(words, f.mailboxId));
      }
    }
    for (const [name, , short] of TEXT_FILTERS) {
      const needle = f[name];
      if (typeof needle === 'string' && needle !== '') {
        key += short;
        params.push(`%${escapeLike(needle.toLowerCase())}%`);
      }
    }
    if (f.headerName !== undefined) {
      key += 'h';
      params.push(`%\n${escapeLike(f.headerName.toLowerCase())}:${f.headerValue !== undefined ? `%${escapeLike(f.headerValue.toLowerCase())}` : ''}%`);
    }
    const push = (k: string, v: unknown): void => {
      key += k;
      params.push(v);
    };
    if (f.minSize !== undefined) push('m', f.minSize);
    if (f.maxSize !== undefined) push('M', f.maxSize);
    if (f.after !== undefined) push('a', f.after);
    if (f.before !== undefined) push('b', f.before);
    if (f.hasAttachment !== undefined) push('A', f.hasAttachment ? 1 : 0);
    if (f.isUnread !== undefined) push('u', f.isUnread ? 0 : 1);
    if (f.keyword !== undefined) push('k', f.keyword.toLowerCase());
    if (f.notKeyword !== undefined) push('K', f.notKeyword.toLowerCase());
    return { key, params };
  }

  /** runCompiled (repos/compiled.ts) for this repo's shapes; the rows. */
  private async runCompiled<R>(shape: string, build: () => Compilable, params: unknown[]): Promise<R[]> {
    return (await runCompiled<R>(this.ctx.db, this.ctx.dialect, `message-query ${shape}`, build, params)).rows;
  }

  /**
   * A page of messages in sort order. `summary` rows leave out the bodies and the stored header
   * and IMAP structures (most of a row's bytes); `full` rows have everything; `keys` rows have only
   * id, modseq and the sort column.
   */
  async list(f: MessageFilter, sort: MessageSort, limit: number, after: { v: string | number; id: string } | null, columns: ListColumns = 'summary'): Promise<MessageRow[]> {
    if (this.ctx.dialect === 'sqlite' && f.q !== undefined && sort.by === 'received_at' && searchWords(f.q).length > 0) return this.searchByKey(f, sort.direction, limit, after, columns);
    if (this.ctx.dialect === 'sqlite' && f.folderId !== undefined && sort.by === 'received_at') return this.listByFolder({ ...f, folderId: f.folderId }, sort.direction, limit, after, columns);
    const column = SORT_COLUMNS[sort.by];
    const { key, params } = this.plan(f);
    if (after) params.push(...this.cursorParams(column, after));
    params.push(limit + 1);
    return this.runCompiled<MessageRow>(`list ${columns} ${key} ${sort.by} ${sort.direction} ${after ? 'after' : ''}`, () => {
      let q = this.apply(this.select(columns, undefined, sort.by), f);
      if (after) q = this.afterCursor(q, column, sort.direction, after);
      return q
        .orderBy(`messages.${column}`, sort.direction)
        .orderBy('messages.id', sort.direction)
        .limit(limit + 1);
    }, params);
  }

  /**
   * SQLite, one folder in received order: the page is read from the folder's (folder_id,
   * received_at, message_id) index, each message looked up by id, so a page costs the same whatever
   * share of the mailbox the folder holds. Walking the mailbox's index instead reads messages until
   * a page of the folder is found: every message of the mailbox for a folder with few (132 ms for
   * an empty folder of the 100,000-message bench mailbox, 0.1 ms this way).
   * message_folders.received_at is the message's (written with the row).
   */
  private async listByFolder(f: MessageFilter & { folderId: string }, direction: 'asc' | 'desc', limit: number, after: { v: string | number; id: string } | null, columns: ListColumns): Promise<MessageRow[]> {
    const { folderId, ...rest } = f;
    const { key, params } = this.plan(rest);
    params.unshift(folderId);
    if (after) params.push(...this.cursorParams('received_at', after));
    params.push(limit + 1);
    return this.runCompiled<MessageRow>(`list by folder ${columns} ${key} ${direction} ${after ? 'after' : ''}`, () => {
      // CROSS JOIN: SQLite keeps the folder's index as the outer loop.
      const base = this.ctx.db.selectFrom('message_folders as mf').crossJoin('messages').whereRef('messages.id', '=', 'mf.message_id').where('mf.folder_id', '=', folderId);
      let q = this.apply(this.select(columns, base as never), rest);
      if (after) {
        const cmp = sql.raw(direction === 'desc' ? '<' : '>');
        const v = String(after.v);
        q = q.where(sql<boolean>`(mf.received_at ${cmp} ${v} OR (mf.received_at = ${v} AND mf.message_id ${cmp} ${after.id}))`);
      }
      return q
        .orderBy(sql`mf.received_at`, direction)
        .orderBy(sql`mf.message_id`, direction)
        .limit(limit + 1);
    }, params);
  }

  /** Summary rows of these messages of a mailbox, in no particular order (no sort: an id lookup each). */
  async summariesByIds(mailboxId: string, ids: string[]): Promise<MessageRow[]> {
    if (ids.length === 0) return [];
    // The mailbox is checked here, not in SQL: with both, SQLite may walk the mailbox's index instead of the ids.
    const rows = await this.runCompiled<MessageRow>(`by ids ${ids.length}`, () => this.select('summary').where('messages.id', 'in', ids), ids);
    return rows.filter((r) => r.mailbox_id === mailboxId);
  }

  /** The values afterCursor binds, in its order. */
  private cursorParams(column: (typeof SORT_COLUMNS)[SortBy], after: { v: string | number; id: string }): unknown[] {
    const v = column === 'size_bytes' ? Number(after.v) : String(after.v);
    return [v, v, after.id];
  }

  private afterCursor(q: Q, column: (typeof SORT_COLUMNS)[SortBy], direction: 'asc' | 'desc', after: { v: string | number; id: string }): Q {
    const cmp = direction === 'desc' ? '<' : '>';
    const v = column === 'size_bytes' ? Number(after.v) : String(after.v);
    return q.where((eb) => eb.or([eb(`messages.${column}`, cmp, v), eb.and([eb(`messages.${column}`, '=', v), eb('messages.id', cmp, after.id)])]));
  }

  /**
   * SQLite search sorted by received_at: reads the full-text matches in search-key order (received
   * order between 10 ms slices) and stops after a page, instead of sorting every match. The rest of
   * the last slice read is fetched too, then the rows are sorted exactly by (received_at, id).
   */
  private async searchByKey(f: MessageFilter, direction: 'asc' | 'desc', limit: number, after: { v: string | number; id: string } | null, columns: ListColumns): Promise<MessageRow[]> {
    const match = ftsMatch(searchWords(f.q!), f.mailboxId);
    const desc = direction === 'desc';
    const read = async (lo: number | null, hi: number | null, max: number | null): Promise<(MessageRow & { search_key: number })[]> => {
      const { key, params } = this.plan(f, true);
      // Bound as integers: FTS5 ignores a rowid bound given as a (float) JS number and reads every match.
      params.push(match, ...(lo !== null ? [BigInt(lo)] : []), ...(hi !== null ? [BigInt(hi)] : []), ...(after ? this.cursorParams('received_at', after) : []), ...(max !== null ? [max] : []));
      const shape = `search ${columns} ${key} ${direction} ${lo !== null ? 'lo' : ''} ${hi !== null ? 'hi' : ''} ${after ? 'after' : ''} ${max !== null ? 'max' : ''}`;
      return this.runCompiled<MessageRow & { search_key: number }>(shape, () => {
        const fts = this.ctx.db.selectFrom(sql`messages_fts`.as('messages_fts') as never).crossJoin('messages') as unknown as SelectQueryBuilder<Database, 'messages', object>;
        let q = (this.apply(this.select(columns, fts as never), f, true).select(sql<number>`messages.rowid`.as('search_key')) as unknown as Q)
          .where(sql<boolean>`messages.rowid = messages_fts.rowid`)
          .where(sql<boolean>`messages_fts MATCH ${match}`);
        if (lo !== null) q = q.where(sql<boolean>`messages_fts.rowid >= ${BigInt(lo)}`);
        if (hi !== null) q = q.where(sql<boolean>`messages_fts.rowid < ${BigInt(hi)}`);
        if (after) q = this.afterCursor(q, 'received_at', direction, after);
        q = q.orderBy(sql`messages_fts.rowid`, direction);
        if (max !== null) q = q.limit(max);
        return q;
      }, params);
    };
    // The cursor's slice and beyond (the exact cursor condition is applied too).
    const bound = after ? searchKeyFloor(String(after.v)) : null;
    // A few rows past the page: when they reach another slice, the page's last slice is complete
    // and no second read is needed (the usual case).
    const max = limit + 1 + SEARCH_SLICE_SLACK;
    const first = await read(desc ? null : bound, desc && bound !== null ? bound + SEARCH_KEY_SLOTS : null, max);
    let rows = first;
    const lastKey = first[first.length - 1]?.search_key;
    if (first.length === max && lastKey !== undefined && sliceOf(lastKey) === sliceOf(first[limit]!.search_key)) {
      const slice = sliceOf(lastKey) * SEARCH_KEY_SLOTS;
      rows = rows.concat(desc ? await read(slice, lastKey, null) : await read(lastKey + 1, slice + SEARCH_KEY_SLOTS, null));
    }
    const sign = desc ? -1 : 1;
    rows.sort((a, b) => sign * (a.received_at < b.received_at ? -1 : a.received_at > b.received_at ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return rows.slice(0, limit + 1).map(({ search_key: _, ...row }) => row as MessageRow);
  }

  /**
   * Exact counts: from the counters kept by every write (messages.ts) when the filter is at most a
   * folder and the unread flag, else count(*) over the filter.
   */
  async count(f: MessageFilter): Promise<number> {
    const { mailboxId, folderId, isUnread, ...rest } = f;
    if (Object.values(rest).every((v) => v === undefined)) {
      const c =
        folderId !== undefined
          ? await this.ctx.db.selectFrom('folders').select(['total_messages as total', 'unread_messages as unread']).where('id', '=', folderId).where('mailbox_id', '=', mailboxId).executeTakeFirst()
          : await this.ctx.db.selectFrom('mailbox_message_counts').select(['total', 'unread']).where('mailbox_id', '=', mailboxId).executeTakeFirst();
      const total = Number(c?.total ?? 0);
      const unread = Number(c?.unread ?? 0);
      return isUnread === undefined ? total : isUnread ? unread : total - unread;
    }
    return this.countAll(f);
  }

  /** count(*) over the filter (the counters' reference in tests). */
  async countAll(f: MessageFilter): Promise<number> {
    const q = this.apply(this.ctx.db.selectFrom('messages') as unknown as Q, f);
    const r = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number((r as { n: number }).n);
  }

  /** Ids in order, for query-changes windows. */
  async ids(f: MessageFilter, sort: MessageSort, max: number): Promise<string[]> {
    const column = SORT_COLUMNS[sort.by];
    const q = this.apply(this.ctx.db.selectFrom('messages') as unknown as Q, f);
    const rows = await q.select('messages.id').orderBy(`messages.${column}`, sort.direction).orderBy('messages.id', sort.direction).limit(max).execute();
    return (rows as { id: string }[]).map((r) => r.id);
  }
}

/** What a message summary or a snippet needs from a row (views.ts summaryJson / summaryView). */
const SUMMARY_COLUMNS = [
  'id', 'mailbox_id', 'thread_id', 'size_bytes', 'received_at', 'sent_at', 'subject', 'addresses', 'preview', 'has_attachments',
  'attachments', 'keywords', 'seen', 'flagged', 'answered', 'draft', 'folder_ids', 'modseq',
] as const;

type SummaryColumn = (typeof SUMMARY_COLUMNS)[number] | (typeof SORT_COLUMNS)[SortBy];

const SUMMARY_COLUMNS_BY_SORT = Object.fromEntries(
  Object.entries(SORT_COLUMNS).map(([by, column]) => [by, (SUMMARY_COLUMNS as readonly string[]).includes(column) ? SUMMARY_COLUMNS : [...SUMMARY_COLUMNS, column]]),
) as unknown as Record<SortBy, readonly SummaryColumn[]>;

/** A key row: what tells whether a cached summary is current, and the cursor's sort value. */
const KEY_COLUMNS_BY_SORT = Object.fromEntries(
  Object.entries(SORT_COLUMNS).map(([by, column]) => [by, column === 'received_at' ? ['id', 'modseq', 'received_at'] : ['id', 'modseq', 'received_at', column]]),
) as unknown as Record<SortBy, readonly ('id' | 'modseq' | (typeof SORT_COLUMNS)[SortBy])[]>;

/** Which columns a list reads (see `list`). */
export type ListColumns = 'summary' | 'full' | 'keys';

/** Summary columns plus the sort column (the next page's cursor is read from the last row). */
function summaryColumns(sortBy: SortBy): readonly SummaryColumn[] {
  return SUMMARY_COLUMNS_BY_SORT[sortBy];
}

export function sortValue(row: MessageRow, by: SortBy): string | number {
  return row[SORT_COLUMNS[by]];
}
