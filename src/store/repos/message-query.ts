// The message filter set of the Mailbox API (list, count, snippets, query-changes) as SQL, with
// keyset pagination for every sort. Full text: SQLite FTS5 or PostgreSQL tsvector, the same
// semantics (every word must occur; words are matched whole, case- and accent-insensitively).
import { sql, type SelectQueryBuilder } from 'kysely';
import type { Database } from '../schema.ts';
import type { RepoContext } from './common.ts';
import type { MessageRow } from './messages.ts';

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

/** Words of a free-text query, folded, without FTS syntax characters. */
export function searchWords(q: string): string[] {
  return foldForSearch(q)
    .split(/[^\p{L}\p{N}@._+-]+/u)
    .flatMap((w) => w.split(/[@._+-]+/))
    .filter((w) => w.length > 0)
    .slice(0, 32);
}

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

  private like(column: 'from_sort' | 'to_sort' | 'cc_text' | 'bcc_text' | 'subject_sort' | 'text_body' | 'headers_text', pattern: string) {
    const ref = column === 'text_body' ? sql`lower(messages.text_body)` : sql.ref(`messages.${column}`);
    return sql<boolean>`${ref} LIKE ${pattern} ESCAPE '\\'`;
  }

  apply(query: Q, f: MessageFilter): Q {
    let q = query.where('messages.mailbox_id', '=', f.mailboxId);
    if (f.threadId !== undefined) q = q.where('messages.thread_id', '=', f.threadId);
    if (f.ids !== undefined) q = q.where('messages.id', 'in', f.ids.length > 0 ? f.ids : ['']);
    if (f.folderId !== undefined) {
      const folderId = f.folderId;
      q = q.where((eb) => eb.exists(eb.selectFrom('message_folders').select('message_folders.message_id').whereRef('message_folders.message_id', '=', 'messages.id').where('message_folders.folder_id', '=', folderId)));
    }
    if (f.q !== undefined) {
      const words = searchWords(f.q);
      if (words.length === 0) {
        q = q.where(sql<boolean>`1 = 0`);
      } else if (this.ctx.dialect === 'postgres') {
        const tsq = words.map((w) => w.replace(/'/g, "''")).join(' & ');
        q = q.where(sql<boolean>`messages.search @@ to_tsquery('simple', ${tsq})`);
      } else {
        const match = words.map((w) => `"${w.replace(/"/g, '""')}"`).join(' ');
        q = q.where(sql<boolean>`messages.rowid IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ${match})`);
      }
    }
    const text: [keyof MessageFilter, 'from_sort' | 'to_sort' | 'cc_text' | 'bcc_text' | 'subject_sort' | 'text_body'][] = [
      ['from', 'from_sort'],
      ['to', 'to_sort'],
      ['cc', 'cc_text'],
      ['bcc', 'bcc_text'],
      ['subject', 'subject_sort'],
      ['body', 'text_body'],
    ];
    for (const [key, column] of text) {
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
   * A page of messages in sort order. `summary` rows leave out the bodies and the stored header
   * and IMAP structures (most of a row's bytes); `full` rows have everything.
   */
  async list(f: MessageFilter, sort: MessageSort, limit: number, after: { v: string | number; id: string } | null, columns: 'summary' | 'full' = 'summary'): Promise<MessageRow[]> {
    const column = SORT_COLUMNS[sort.by];
    const base = this.ctx.db.selectFrom('messages');
    const selected = columns === 'full' ? base.selectAll('messages') : base.select(SUMMARY_COLUMNS.map((c) => `messages.${c}` as const));
    let q = this.apply(selected as unknown as Q, f);
    if (after) {
      const cmp = sort.direction === 'desc' ? '<' : '>';
      const v = column === 'size_bytes' ? Number(after.v) : String(after.v);
      q = q.where((eb) => eb.or([eb(`messages.${column}`, cmp, v), eb.and([eb(`messages.${column}`, '=', v), eb('messages.id', cmp, after.id)])]));
    }
    return (await q
      .orderBy(`messages.${column}`, sort.direction)
      .orderBy('messages.id', sort.direction)
      .limit(limit + 1)
      .execute()) as unknown as MessageRow[];
  }

  async count(f: MessageFilter): Promise<number> {
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

/** What a message summary, a snippet or a sort cursor needs from a row. */
const SUMMARY_COLUMNS = [
  'id', 'mailbox_id', 'thread_id', 'blob_sha256', 'size_bytes', 'received_at', 'sent_at', 'sent_sort', 'subject', 'subject_sort',
  'from_sort', 'to_sort', 'addresses', 'preview', 'has_attachments', 'attachments', 'rfc_message_id', 'keywords', 'seen', 'flagged',
  'answered', 'draft', 'is_spam', 'modseq',
] as const;

export function sortValue(row: MessageRow, by: SortBy): string | number {
  return row[SORT_COLUMNS[by]];
}
