// Reading and organising mail through the Mailbox API: list with every filter and sort, count,
// search snippets, get, raw body, clean content, keyword updates, moves to Trash and permanent
// deletes (single and batch, with if_in_state), and attachment bytes with Range.
import { createHash, randomBytes } from 'node:crypto';
import { iso } from '../../core/clock.ts';
import { AppError, conflict, invalidParameter, notFound } from '../../core/errors.ts';
import { decodeCursor, encodeCursor } from '../../core/cursor.ts';
import { sortValue, searchWords, type ListColumns, type MessageFilter, type MessageRow, type MessageSort, type SortBy } from '../../store/index.ts';
import { cleanBody, type CleanOptions } from '../../mime/clean/index.ts';
import { extractPart } from '../../mime/extract.ts';
import type { ServiceContext } from '../context.ts';
import { etagOf } from '../etag.ts';
import type { FoldersService } from './folders.ts';
import { stateOf } from './states.ts';
import { SummaryCache } from './summary-cache.ts';
import { attachmentViews, DownloadTokens, folderIdList, partIdOf, summaryJson, summaryView, detailView, type StoredAddresses, type ViewContext } from './views.ts';

/** Keyword changes in one update (spec session limits: keywords_per_update_max). */
export const KEYWORDS_PER_UPDATE_MAX = 50;
/** Lifecycle keywords the API may not set or clear. */
const READ_ONLY_KEYWORDS = new Set(['$draft', '$recent']);
const KEYWORD = /^[\x21-\x7e]{1,255}$/;
const KEYWORD_FORBIDDEN = /[(){\]%*"\\]/;
/** Body text limits (spec: max_body_chars 1..1,000,000; default 100,000). */
export const BODY_CHARS_DEFAULT = 100_000;

export interface ListQuery {
  filter: Omit<MessageFilter, 'mailboxId'>;
  sort: MessageSort;
  limit: number;
  cursor?: string;
}

export interface ContentOptions extends CleanOptions {
  includeHeaders: 'none' | 'selected' | 'full';
  includeAttachments: 'none' | 'metadata';
}

function truncate(s: string | null, max: number): { value: string | null; truncated: boolean } {
  if (s === null || s.length <= max) return { value: s, truncated: false };
  let cut = max;
  const code = s.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut -= 1;
  return { value: s.slice(0, cut), truncated: true };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/**
 * Wraps every occurrence of a query word in <mark>, HTML-escaping the rest. Matching is on folded
 * text (lowercase, no accents) like the search itself, so "zurich" marks "Zürich".
 */
export function highlight(text: string | null, words: string[]): string | null {
  if (text === null) return null;
  if (words.length === 0) return escapeHtml(text);
  // Fold code point by code point, remembering where each folded character came from.
  const chars = [...text];
  let folded = '';
  const origin: number[] = [];
  chars.forEach((ch, i) => {
    const f = ch.normalize('NFKD').replace(/\p{M}+/gu, '').toLowerCase();
    for (let k = 0; k < f.length; k++) origin.push(i);
    folded += f;
  });
  const marked = new Array<boolean>(chars.length).fill(false);
  for (const w of words) {
    for (let at = folded.indexOf(w); at !== -1; at = folded.indexOf(w, at + w.length)) {
      for (let k = at; k < at + w.length; k++) marked[origin[k]!] = true;
    }
  }
  let out = '';
  chars.forEach((ch, i) => {
    if (marked[i] && !marked[i - 1]) out += '<mark>';
    out += escapeHtml(ch);
    if (marked[i] && !marked[i + 1]) out += '</mark>';
  });
  return out;
}

export class MessagesService {
  private readonly ctx: ServiceContext;
  private readonly folders: FoldersService;
  private tokens: DownloadTokens | null = null;
  private readonly summaryCache = new SummaryCache();

  constructor(ctx: ServiceContext, folders: FoldersService) {
    this.ctx = ctx;
    this.folders = folders;
  }

  private async viewContext(): Promise<ViewContext> {
    if (!this.tokens) {
      const key = await this.ctx.store.settings.getOrCreate('download_token_key', () => randomBytes(32).toString('base64'));
      this.tokens = new DownloadTokens(Buffer.from(key, 'base64'));
    }
    return { baseUrl: this.ctx.config.publicUrl, tokens: this.tokens, now: this.ctx.clock.now() };
  }

  /** Fresh attachment metadata (with download links) of a message, or null when it is gone. */
  async attachmentLinks(mailboxId: string, id: string): Promise<Record<string, unknown>[] | null> {
    const row = await this.ctx.store.messages.get(id);
    if (!row || row.mailbox_id !== mailboxId) return null;
    return attachmentViews(row, await this.viewContext());
  }

  async emailState(mailboxId: string): Promise<string> {
    return stateOf(this.ctx.store, mailboxId, 'message');
  }

  async row(mailboxId: string, id: string): Promise<MessageRow> {
    const row = await this.ctx.store.messages.get(id);
    if (!row || row.mailbox_id !== mailboxId) throw notFound('Message');
    return row;
  }

  /** Resolves folder ids or role names in a filter to folder ids of this mailbox. */
  async resolveFilter(mailboxId: string, f: ListQuery['filter']): Promise<MessageFilter> {
    const filter: MessageFilter = { ...f, mailboxId };
    if (f.folderId !== undefined) filter.folderId = (await this.folders.resolve(mailboxId, f.folderId).catch(() => {
      throw invalidParameter('folder_id is not a folder of this mailbox', 'folder_id');
    })).id;
    if (f.threadId !== undefined) {
      const others = Object.entries(f).filter(([k, v]) => k !== 'threadId' && v !== undefined);
      if (others.length > 0) throw invalidParameter('thread_id cannot be combined with other message filters', 'thread_id');
    }
    return filter;
  }

  /** Folder ids of each row: rows read from the store carry theirs (messages.folder_ids); others need a lookup. */
  private async folderIdsOf(rows: MessageRow[]): Promise<Map<string, string[]>> {
    return rows.every((r) => r.folder_ids !== undefined)
      ? new Map(rows.map((r) => [r.id, folderIdList(r.folder_ids!)]))
      : this.ctx.store.messages.folderIdsOf(rows.map((r) => r.id));
  }

  async summaries(rows: MessageRow[]): Promise<Record<string, unknown>[]> {
    const vc = await this.viewContext();
    const folderIds = await this.folderIdsOf(rows);
    return rows.map((r) => summaryView(r, folderIds.get(r.id) ?? [], vc));
  }

  private async listRows(mailboxId: string, q: ListQuery, columns: ListColumns = 'summary'): Promise<{ page: MessageRow[]; hasMore: boolean; nextCursor?: string }> {
    const filter = await this.resolveFilter(mailboxId, q.filter);
    const sort = q.sort;
    const rows = await this.ctx.store.messageQuery.list(filter, sort, q.limit, decodeCursor(q.cursor), columns);
    const hasMore = rows.length > q.limit;
    const page = hasMore ? rows.slice(0, q.limit) : rows;
    const last = page[page.length - 1];
    return hasMore && last ? { page, hasMore, nextCursor: encodeCursor({ v: sortValue(last, sort.by), id: last.id }) } : { page, hasMore };
  }

  async list(mailboxId: string, q: ListQuery): Promise<{ items: Record<string, unknown>[]; hasMore: boolean; nextCursor?: string }> {
    const { page, ...rest } = await this.listRows(mailboxId, q);
    return { items: await this.summaries(page), ...rest };
  }

  /**
   * list, with the page's summaries as JSON text (`json`, an array) instead of objects: what the
   * HTTP list sends, without building objects only to serialise them. The page is read as key rows
   * (id, modseq, sort value); each summary comes from the summary cache when it holds the row at
   * that modseq, and the others are read as summary rows in one more query (summary-cache.ts).
   */
  async listJson(mailboxId: string, q: ListQuery): Promise<{ json: string; hasMore: boolean; nextCursor?: string }> {
    const { page, ...rest } = await this.listRows(mailboxId, q, 'keys');
    const byId = await this.summariesJsonAt(mailboxId, page);
    let json = '[';
    for (const r of page) {
      // A message deleted between the two reads is left out of the page.
      const part = byId.get(r.id);
      if (part !== undefined) json += (json.length === 1 ? '' : ',') + part;
    }
    return { json: `${json}]`, ...rest };
  }

  /**
   * The summaries (JSON text, by id) of these messages of a mailbox, each as of the modseq given
   * or later: from the summary cache when it holds the message at that modseq, the others read in
   * one query (and kept, unless they have attachments). Messages that are gone are left out.
   */
  async summariesJsonAt(mailboxId: string, keys: readonly { id: string; modseq: number }[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let missing: string[] | null = null;
    for (const k of keys) {
      const json = this.summaryCache.get(k.id, k.modseq);
      if (json === undefined) (missing ??= []).push(k.id);
      else out.set(k.id, json);
    }
    if (missing !== null) {
      const vc = await this.viewContext();
      for (const r of await this.ctx.store.messageQuery.summariesByIds(mailboxId, missing)) {
        const json = summaryJson(r, r.folder_ids ?? (await this.folderIdsOf([r])).get(r.id) ?? [], vc);
        out.set(r.id, json);
        if (r.attachments === '[]') this.summaryCache.set(r.id, r.modseq, json);
      }
    }
    return out;
  }

  async count(mailboxId: string, f: ListQuery['filter']): Promise<{ total: number; sync_state: string }> {
    const filter = await this.resolveFilter(mailboxId, f);
    return { total: await this.ctx.store.messageQuery.count(filter), sync_state: await this.emailState(mailboxId) };
  }

  async snippets(mailboxId: string, q: string, f: ListQuery['filter'], messageIds: string[] | undefined, limit: number) {
    const filter = await this.resolveFilter(mailboxId, { ...f, q });
    if (messageIds) filter.ids = messageIds;
    const rows = await this.ctx.store.messageQuery.list(filter, { by: 'received_at', direction: 'desc' }, limit, null);
    const words = searchWords(q);
    const found = new Set(rows.map((r) => r.id));
    let notFound: string[] = [];
    if (messageIds) {
      const existing = new Set((await this.ctx.store.messages.getMany(mailboxId, messageIds)).map((r) => r.id));
      notFound = messageIds.filter((id) => !existing.has(id));
    }
    return {
      snippets: rows.slice(0, limit).filter((r) => found.has(r.id)).map((r) => ({ message_id: r.id, subject: highlight(r.subject, words), preview: highlight(r.preview, words) })),
      not_found: notFound,
      sync_state: await this.emailState(mailboxId),
    };
  }

  async get(mailboxId: string, id: string): Promise<{ view: Record<string, unknown>; etag: string }> {
    const row = await this.row(mailboxId, id);
    const folderIds = (await this.ctx.store.messages.folderIdsOf([row.id])).get(row.id) ?? [];
    const vc = await this.viewContext();
    return { view: detailView(row, folderIds, vc), etag: this.etag(row, folderIds) };
  }

  etag(row: MessageRow, folderIds: string[]): string {
    return etagOf([row.id, row.modseq, folderIds]);
  }

  async currentEtag(mailboxId: string, id: string): Promise<string> {
    const row = await this.row(mailboxId, id);
    return this.etag(row, (await this.ctx.store.messages.folderIdsOf([row.id])).get(row.id) ?? []);
  }

  async rawBody(mailboxId: string, id: string, part: 'text' | 'html' | 'both', maxChars: number) {
    const row = await this.row(mailboxId, id);
    const text = part === 'html' ? { value: null, truncated: false } : truncate(row.text_body, maxChars);
    const html = part === 'text' ? { value: null, truncated: false } : truncate(row.html_body, maxChars);
    const truncated = text.truncated || html.truncated;
    return {
      id: row.id,
      thread_id: row.thread_id,
      part,
      body: { text: text.value, html: html.value, is_truncated: truncated, truncated_at_chars: truncated ? maxChars : null },
      states: { email_state: await this.emailState(mailboxId) },
    };
  }

  optionHash(o: ContentOptions): string {
    const basis = [o.part, o.maxBodyChars, o.stripSignature, o.stripQuotes, o.includeLinks, o.includeHtml, o.includeHeaders, o.includeAttachments].join('|');
    return createHash('sha256').update(basis).digest('hex').slice(0, 16);
  }

  async contentOf(row: MessageRow, o: ContentOptions, emailState: string): Promise<Record<string, unknown>> {
    const a = JSON.parse(row.addresses) as StoredAddresses;
    const body = cleanBody({ text: row.text_body, html: row.html_body, subject: row.subject }, o);
    const vc = await this.viewContext();
    const headers =
      o.includeHeaders === 'none'
        ? { mode: 'none', selected: null, full: null }
        : o.includeHeaders === 'selected'
          ? {
              mode: 'selected',
              selected: { message_id: row.rfc_message_id ? [row.rfc_message_id] : [], in_reply_to: row.in_reply_to, references: JSON.parse(row.references) as string[], reply_to: a.reply_to },
              full: null,
            }
          : { mode: 'full', selected: null, full: JSON.parse(row.headers) as { name: string; value: string }[] };
    return {
      id: row.id,
      thread_id: row.thread_id,
      subject: row.subject,
      dates: { received_at: row.received_at, sent_at: row.sent_at },
      participants: { from: a.from, to: a.to, cc: a.cc, bcc: a.bcc, reply_to: a.reply_to },
      body,
      headers,
      attachments: o.includeAttachments === 'metadata' ? attachmentViews(row, vc) : [],
      states: { email_state: emailState, option_hash: this.optionHash(o) },
    };
  }

  async content(mailboxId: string, id: string, o: ContentOptions): Promise<Record<string, unknown>> {
    const row = await this.row(mailboxId, id);
    return this.contentOf(row, o, await this.emailState(mailboxId));
  }

  async batchGet(mailboxId: string, ids: string[], bodyMode: 'none' | 'raw' | 'clean_json', part: 'auto' | 'text' | 'html' | 'both', o: ContentOptions) {
    const unique = [...new Set(ids)];
    const rows = await this.ctx.store.messages.getMany(mailboxId, unique);
    const byId = new Map(rows.map((r) => [r.id, r]));
    const ordered = unique.map((id) => byId.get(id)).filter((r): r is MessageRow => r !== undefined);
    const summaries = await this.summaries(ordered);
    const state = await this.emailState(mailboxId);
    const messages = [];
    for (const [i, row] of ordered.entries()) {
      let raw_body: unknown = null;
      let content: unknown = null;
      if (bodyMode === 'raw') raw_body = await this.rawBody(mailboxId, row.id, part === 'auto' ? 'both' : part, o.maxBodyChars);
      if (bodyMode === 'clean_json') content = await this.contentOf(row, { ...o, part: part === 'both' ? 'auto' : part }, state);
      messages.push({ message: summaries[i], raw_body, content });
    }
    return { messages, not_found: unique.filter((id) => !byId.has(id)), states: { email_state: state } };
  }

  /** Validates a keyword change map: lowercase names, syntax, read-only lifecycle keywords, count. */
  normaliseKeywordChanges(input: { seen?: boolean; flagged?: boolean; keywords?: Record<string, boolean> }): Map<string, boolean> {
    const changes = new Map<string, boolean>();
    for (const [name, value] of Object.entries(input.keywords ?? {})) {
      const k = name.toLowerCase();
      if (!KEYWORD.test(k) || KEYWORD_FORBIDDEN.test(k)) throw invalidParameter(`Invalid keyword ${JSON.stringify(name)}`, `keywords.${name}`);
      if (READ_ONLY_KEYWORDS.has(k)) throw invalidParameter(`${k} is a lifecycle keyword and cannot be changed`, `keywords.${name}`);
      changes.set(k, value);
    }
    if (input.seen !== undefined) changes.set('$seen', input.seen);
    if (input.flagged !== undefined) changes.set('$flagged', input.flagged);
    if (changes.size > KEYWORDS_PER_UPDATE_MAX) throw invalidParameter(`At most ${KEYWORDS_PER_UPDATE_MAX} keyword changes per update`, 'keywords');
    return changes;
  }

  private applyKeywords(row: MessageRow, changes: Map<string, boolean>): string[] | null {
    const current = new Set(JSON.parse(row.keywords) as string[]);
    const next = new Set(current);
    for (const [k, v] of changes) {
      if (v) next.add(k);
      else next.delete(k);
    }
    if (next.size === current.size && [...next].every((k) => current.has(k))) return null;
    return [...next].sort();
  }

  async update(mailboxId: string, id: string, input: { seen?: boolean; flagged?: boolean; keywords?: Record<string, boolean> }, ifMatch?: (etag: string) => void) {
    const changes = this.normaliseKeywordChanges(input);
    await this.ctx.store.transaction(async (tx) => {
      const row = await tx.messages.get(id);
      if (!row || row.mailbox_id !== mailboxId) throw notFound('Message');
      ifMatch?.(this.etag(row, (await tx.messages.folderIdsOf([row.id])).get(row.id) ?? []));
      const next = this.applyKeywords(row, changes);
      if (next) {
        await tx.messages.setKeywords(row, next, iso(this.ctx.clock.now()));
        for (const f of await tx.messages.memberships(row.id)) await tx.folders.touched(f.folder_id, mailboxId);
      }
    });
    return this.get(mailboxId, id);
  }

  async batchUpdate(mailboxId: string, input: { ids: string[]; seen?: boolean; flagged?: boolean; keywords?: Record<string, boolean>; if_in_state?: string }) {
    const changes = this.normaliseKeywordChanges(input);
    return this.ctx.store.transaction(async (tx) => {
      const oldState = await stateOf(tx, mailboxId, 'message');
      if (input.if_in_state !== undefined && input.if_in_state !== oldState) throw conflict('State conflict: if_in_state does not match the current state');
      const ids = [...new Set(input.ids)];
      const rows = new Map((await tx.messages.getMany(mailboxId, ids)).map((r) => [r.id, r]));
      const updated: string[] = [];
      const notFoundIds: string[] = [];
      const touched = new Set<string>();
      for (const id of ids) {
        const row = rows.get(id);
        if (!row) {
          notFoundIds.push(id);
          continue;
        }
        const next = this.applyKeywords(row, changes);
        if (next) {
          await tx.messages.setKeywords(row, next, iso(this.ctx.clock.now()));
          for (const f of await tx.messages.memberships(row.id)) touched.add(f.folder_id);
        }
        updated.push(id);
      }
      for (const folderId of touched) await tx.folders.touched(folderId, mailboxId);
      return { updated, not_found: notFoundIds, failed: [] as { id: string; code: string; message: string }[], states: { old_state: oldState, new_state: await stateOf(tx, mailboxId, 'message') } };
    });
  }

  /**
   * Delete = move to Trash; a message already in Trash, or `permanent`, is destroyed (its blob goes
   * when no other message uses it). Returns the blobs that became unreferenced.
   */
  private async deleteOne(tx: Parameters<Parameters<ServiceContext['store']['transaction']>[0]>[0], row: MessageRow, permanent: boolean, orphanBlobs: Set<string>): Promise<void> {
    const now = iso(this.ctx.clock.now());
    const memberships = await tx.messages.memberships(row.id);
    const trash = await tx.folders.byRole(row.mailbox_id, 'trash');
    const inTrash = trash !== undefined && memberships.some((m) => m.folder_id === trash.id);
    if (!permanent && trash && !inTrash) {
      const uid = await tx.folders.allocateUids(trash.id, 1);
      await tx.messages.setFolders(row, [trash.id], new Map([[trash.id, uid]]), now);
      for (const m of memberships) await tx.folders.touched(m.folder_id, row.mailbox_id);
      await tx.folders.touched(trash.id, row.mailbox_id);
      return;
    }
    await tx.messages.destroy(row);
    await tx.threads.refresh(row.thread_id, row.mailbox_id);
    await tx.mailboxes.addUsedBytes(row.mailbox_id, -row.size_bytes);
    await tx.changes.append({ mailboxId: row.mailbox_id, type: 'quota', objectId: row.mailbox_id, kind: 'updated' });
    for (const m of memberships) await tx.folders.touched(m.folder_id, row.mailbox_id);
    if (!(await tx.messages.blobInUse(row.blob_sha256))) orphanBlobs.add(row.blob_sha256);
  }

  private async dropBlobs(shas: Set<string>): Promise<void> {
    for (const sha of shas) {
      // Re-check after commit: a new delivery of the same bytes may have claimed the blob.
      if (!(await this.ctx.store.messages.blobInUse(sha))) await this.ctx.store.blobs.delete(sha);
    }
  }

  async delete(mailboxId: string, id: string, permanent: boolean, ifMatch?: (etag: string) => void): Promise<void> {
    const orphans = new Set<string>();
    await this.ctx.store.transaction(async (tx) => {
      const row = await tx.messages.get(id);
      if (!row || row.mailbox_id !== mailboxId) throw notFound('Message');
      ifMatch?.(this.etag(row, (await tx.messages.folderIdsOf([row.id])).get(row.id) ?? []));
      await this.deleteOne(tx, row, permanent, orphans);
    });
    await this.dropBlobs(orphans);
  }

  async batchDelete(mailboxId: string, input: { ids: string[]; permanent?: boolean; if_in_state?: string }) {
    const orphans = new Set<string>();
    const result = await this.ctx.store.transaction(async (tx) => {
      const oldState = await stateOf(tx, mailboxId, 'message');
      if (input.if_in_state !== undefined && input.if_in_state !== oldState) throw conflict('State conflict: if_in_state does not match the current state');
      const ids = [...new Set(input.ids)];
      const rows = new Map((await tx.messages.getMany(mailboxId, ids)).map((r) => [r.id, r]));
      const deleted: string[] = [];
      const notFoundIds: string[] = [];
      for (const id of ids) {
        const row = rows.get(id);
        if (!row) {
          notFoundIds.push(id);
          continue;
        }
        await this.deleteOne(tx, row, input.permanent === true, orphans);
        deleted.push(id);
      }
      return { deleted, not_found: notFoundIds, failed: [] as { id: string; code: string; message: string }[], states: { old_state: oldState, new_state: await stateOf(tx, mailboxId, 'message') } };
    });
    await this.dropBlobs(orphans);
    return result;
  }

  /** Purges every message of a (deleted) mailbox, in batches; frees blobs no one else uses. */
  async purgeMailbox(mailboxId: string): Promise<void> {
    for (;;) {
      const rows = await this.ctx.store.messages.idsForMailbox(mailboxId, 200);
      if (rows.length === 0) break;
      const orphans = new Set<string>();
      await this.ctx.store.transaction(async (tx) => {
        for (const row of rows) await this.deleteOne(tx, row, true, orphans);
      });
      await this.dropBlobs(orphans);
    }
    await this.ctx.store.transaction((tx) => tx.mailboxes.purgeRows(mailboxId));
  }

  /** Attachment bytes, decoded, located by part number in the raw blob. */
  async attachment(mailboxId: string, messageId: string, attachmentIdValue: string): Promise<{ data: Buffer; contentType: string; filename: string | null }> {
    const row = await this.row(mailboxId, messageId);
    return this.attachmentOf(row, attachmentIdValue);
  }

  /** For download_url: no API key, a token bound to one attachment. */
  async attachmentByToken(messageId: string, attachmentIdValue: string, token: string) {
    const vc = await this.viewContext();
    if (!vc.tokens.verify(messageId, attachmentIdValue, token, vc.now)) throw new AppError('authentication_required', 'download_token is invalid or expired');
    const row = await this.ctx.store.messages.get(messageId);
    if (!row) throw notFound('Message');
    return this.attachmentOf(row, attachmentIdValue);
  }

  private async attachmentOf(row: MessageRow, attachmentIdValue: string) {
    const partId = partIdOf(attachmentIdValue);
    const list = JSON.parse(row.attachments) as { part_id: string; filename: string | null; content_type: string }[];
    const meta = list.find((a) => a.part_id === partId);
    if (!partId || !meta) throw notFound('Attachment');
    const raw = await this.ctx.store.blobs.get(row.blob_sha256);
    if (!raw) throw new AppError('internal_error', 'message blob is missing');
    const data = extractPart(raw, partId);
    if (!data) throw notFound('Attachment');
    return { data, contentType: meta.content_type, filename: meta.filename };
  }
}

export type { SortBy };
