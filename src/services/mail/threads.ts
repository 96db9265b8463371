// Threads through the Mailbox API: list (threads with a matching message, newest activity first),
// get (with message ids in order), the thread's messages, and its clean content paged.
import { decodeCursor, encodeCursor } from '../../core/cursor.ts';
import { notFound } from '../../core/errors.ts';
import type { MessageFilter, ThreadRow } from '../../store/index.ts';
import type { ServiceContext } from '../context.ts';
import { etagOf } from '../etag.ts';
import type { ContentOptions, MessagesService } from './messages.ts';
import { stateOf } from './states.ts';
import type { Address, StoredAddresses } from './views.ts';

/** Messages read per thread for a summary's participants (the newest ones). */
export const PARTICIPANT_SCAN_MAX = 50;

export class ThreadsService {
  private readonly ctx: ServiceContext;
  private readonly messages: MessagesService;
  constructor(ctx: ServiceContext, messages: MessagesService) {
    this.ctx = ctx;
    this.messages = messages;
  }

  private participants(rows: { addresses: string }[]): Address[] {
    const seen = new Map<string, Address>();
    // A conversation repeats the same few address sets: text already read adds no one new.
    const read = new Set<string>();
    for (const r of rows) {
      if (read.has(r.addresses)) continue;
      read.add(r.addresses);
      const a = JSON.parse(r.addresses) as StoredAddresses;
      for (const addr of [a.from, ...a.to, ...a.cc].filter((x): x is Address => x !== null)) {
        const key = addr.email.toLowerCase();
        if (!seen.has(key)) seen.set(key, addr);
      }
    }
    return [...seen.values()];
  }

  /** Newest PARTICIPANT_SCAN_MAX messages (addresses only) of each thread, newest first. */
  private async newest(threadIds: string[]): Promise<Map<string, { id: string; addresses: string; modseq: number }[]>> {
    const out = new Map<string, { id: string; addresses: string; modseq: number }[]>();
    for (const r of await this.ctx.store.messages.newestInThreads(threadIds, PARTICIPANT_SCAN_MAX)) out.set(r.thread_id, [...(out.get(r.thread_id) ?? []), r]);
    return out;
  }

  /**
   * What the summaries of a page of threads are made of, with bounded work however long a thread
   * is: counts come from the thread row and folders from thread_folders (counters kept by every
   * write); the last message and the participants from the newest PARTICIPANT_SCAN_MAX messages of
   * each thread.
   */
  private async parts(threads: ThreadRow[]) {
    const ids = threads.map((t) => t.id);
    const [folders, recent] = await Promise.all([this.ctx.store.messages.threadFolders(ids), this.newest(ids)]);
    // Each thread's newest message: its summary is the thread's last_message.
    const last = threads.map((t) => recent.get(t.id)?.[0]).filter((m) => m !== undefined);
    return {
      last,
      of: (thread: ThreadRow) => {
        const newest = recent.get(thread.id) ?? [];
        return { folderIds: folders.get(thread.id) ?? [], participants: this.participants([...newest].reverse()), lastId: newest[0]?.id };
      },
    };
  }

  private async summaries(threads: ThreadRow[], states: { thread_state: string; email_state: string }) {
    const { last, of } = await this.parts(threads);
    const lastRows = threads.length > 0 ? await this.ctx.store.messageQuery.summariesByIds(threads[0]!.mailbox_id, last.map((m) => m.id)) : [];
    const lastViews = new Map((await this.messages.summaries(lastRows)).map((v) => [v.id as string, v]));
    return threads.map((thread) => {
      const p = of(thread);
      return {
        id: thread.id,
        subject: thread.subject,
        message_count: Number(thread.message_count),
        unread_count: Number(thread.unread_count),
        has_attachments: Number(thread.attachment_count) > 0,
        folder_ids: p.folderIds,
        participants: p.participants,
        last_message: p.lastId !== undefined ? (lastViews.get(p.lastId) ?? null) : null,
        states,
      };
    });
  }

  /** summaries as JSON text (an array), the last messages written from their rows (views.ts summaryJson). */
  private async summariesJson(threads: ThreadRow[], states: { thread_state: string; email_state: string }): Promise<string> {
    const { last, of } = await this.parts(threads);
    const lastJson = threads.length > 0 ? await this.messages.summariesJsonAt(threads[0]!.mailbox_id, last) : new Map<string, string>();
    const statesJson = JSON.stringify(states);
    let out = '[';
    for (let i = 0; i < threads.length; i++) {
      const thread = threads[i]!;
      const p = of(thread);
      out +=
        `${i === 0 ? '' : ','}{"id":${JSON.stringify(thread.id)},"subject":${JSON.stringify(thread.subject)},"message_count":${JSON.stringify(Number(thread.message_count))},` +
        `"unread_count":${JSON.stringify(Number(thread.unread_count))},"has_attachments":${Number(thread.attachment_count) > 0},"folder_ids":${JSON.stringify(p.folderIds)},` +
        `"participants":${JSON.stringify(p.participants)},"last_message":${(p.lastId !== undefined ? lastJson.get(p.lastId) : undefined) ?? 'null'},"states":${statesJson}}`;
    }
    return `${out}]`;
  }

  private async states(mailboxId: string) {
    return { thread_state: await stateOf(this.ctx.store, mailboxId, 'thread'), email_state: await stateOf(this.ctx.store, mailboxId, 'message') };
  }

  private async listThreads(mailboxId: string, f: Omit<MessageFilter, 'mailboxId'> & { participant?: string }, direction: 'asc' | 'desc', limit: number, cursor?: string) {
    const { participant, ...rest } = f;
    const filter = await this.messages.resolveFilter(mailboxId, rest);
    // A participant is anyone on from, to or cc: matched per message with an OR over the three.
    const rows = participant
      ? await this.listByParticipant(filter, participant, direction, limit, cursor)
      : await this.ctx.store.threads.list(filter, direction, limit, decodeCursor(cursor));
    const hasMore = rows.length > limit;
    const page = hasMore ? rows.slice(0, limit) : rows;
    const states = await this.states(mailboxId);
    const last = page[page.length - 1];
    return { page, states, hasMore, ...(hasMore && last ? { nextCursor: encodeCursor({ v: last.last_received_at, id: last.id }) } : {}), queryState: states.thread_state };
  }

  async list(mailboxId: string, f: Omit<MessageFilter, 'mailboxId'> & { participant?: string }, direction: 'asc' | 'desc', limit: number, cursor?: string) {
    const { page, states, ...rest } = await this.listThreads(mailboxId, f, direction, limit, cursor);
    return { items: await this.summaries(page, states), ...rest };
  }

  /** list, with the page's thread summaries as JSON text (`json`, an array): what the HTTP list sends. */
  async listJson(mailboxId: string, f: Omit<MessageFilter, 'mailboxId'> & { participant?: string }, direction: 'asc' | 'desc', limit: number, cursor?: string) {
    const { page, states, ...rest } = await this.listThreads(mailboxId, f, direction, limit, cursor);
    return { json: await this.summariesJson(page, states), ...rest };
  }

  private async listByParticipant(filter: MessageFilter, participant: string, direction: 'asc' | 'desc', limit: number, cursor?: string): Promise<ThreadRow[]> {
    // Union of three filtered thread lists, merged in order: bounded by limit + 1 each.
    const after = decodeCursor(cursor);
    const lists = await Promise.all(
      (['from', 'to', 'cc'] as const).map((field) => this.ctx.store.threads.list({ ...filter, [field]: participant }, direction, limit, after)),
    );
    const merged = new Map<string, ThreadRow>();
    for (const t of lists.flat()) merged.set(t.id, t);
    const sorted = [...merged.values()].sort((a, b) => (a.last_received_at === b.last_received_at ? a.id.localeCompare(b.id) : a.last_received_at.localeCompare(b.last_received_at)));
    if (direction === 'desc') sorted.reverse();
    return sorted.slice(0, limit + 1);
  }

  async thread(mailboxId: string, id: string): Promise<ThreadRow> {
    const t = await this.ctx.store.threads.get(id);
    if (!t || t.mailbox_id !== mailboxId) throw notFound('Thread');
    return t;
  }

  async get(mailboxId: string, id: string) {
    const t = await this.thread(mailboxId, id);
    const [view] = await this.summaries([t], await this.states(mailboxId));
    const rows = await this.ctx.store.messages.threadMessageIds(t.id);
    const full = { ...view!, message_ids: rows.map((r) => r.id) };
    const etag = etagOf([full.message_ids, rows.map((r) => r.modseq)]);
    return { view: full, etag };
  }

  async messagesOf(mailboxId: string, id: string, sort: 'asc' | 'desc', limit: number, cursor?: string) {
    const t = await this.thread(mailboxId, id);
    const rows = await this.ctx.store.messageQuery.list({ mailboxId, threadId: t.id }, { by: 'received_at', direction: sort }, limit, decodeCursor(cursor));
    const hasMore = rows.length > limit;
    const page = hasMore ? rows.slice(0, limit) : rows;
    const last = page[page.length - 1];
    return { items: await this.messages.summaries(page), hasMore, ...(hasMore && last ? { nextCursor: encodeCursor({ v: last.received_at, id: last.id }) } : {}) };
  }

  async content(mailboxId: string, id: string, o: ContentOptions, sort: 'asc' | 'desc', limit: number, cursor?: string) {
    const t = await this.thread(mailboxId, id);
    const rows = await this.ctx.store.messageQuery.list({ mailboxId, threadId: t.id }, { by: 'received_at', direction: sort }, limit, decodeCursor(cursor), 'full');
    const hasMore = rows.length > limit;
    const page = hasMore ? rows.slice(0, limit) : rows;
    const emailState = await stateOf(this.ctx.store, mailboxId, 'message');
    const items = [];
    for (const r of page) items.push(await this.messages.contentOf(r, o, emailState));
    const newest = (await this.newest([t.id])).get(t.id) ?? [];
    const last = page[page.length - 1];
    return {
      items,
      hasMore,
      ...(hasMore && last ? { nextCursor: encodeCursor({ v: last.received_at, id: last.id }) } : {}),
      meta: {
        thread_id: t.id,
        participants: this.participants([...newest].reverse()),
        states: { thread_state: await stateOf(this.ctx.store, mailboxId, 'thread'), email_state: emailState, option_hash: this.messages.optionHash(o) },
      },
    };
  }
}
