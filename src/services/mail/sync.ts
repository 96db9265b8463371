// Sync from the one change log: /changes for every state type (legacy message-only and typed),
// query-changes for a filtered, sorted message list and for the folder list, and change-log
// retention. JMAP (RFC 8620 /changes, /queryChanges) is the model.
//
// A state token is a position in the log ('s' + base36 of a change id, see states.ts). A query
// state adds how far a paged answer has got: `q<lo>.<hash>` is "the client's list is the query's
// result at change <lo>"; `q<lo>.<hi>.<boundary>.<hash>` (after a page with has_more) is "the
// list is right up to <boundary> in sort order as of <hi>, and beyond it as of <lo>". Each page
// replaces changed items in sort order, so every `added` index is a position in the final list.
import { createHash } from 'node:crypto';
import { iso } from '../../core/clock.ts';
import { invalidParameter, type AppError } from '../../core/errors.ts';
import { sortValue, type FolderRow, type MessageFilter, type MessageSort } from '../../store/index.ts';
import type { ServiceContext } from '../context.ts';
import type { MessagesService, ListQuery } from './messages.ts';
import { encodeState, type StateType } from './states.ts';

/** The `types` of GET /mailbox/changes and the change-log type each reads. */
export const SYNC_TYPES = { messages: 'message', folders: 'folder', threads: 'thread', submissions: 'submission', identities: 'identity', quotas: 'quota' } as const satisfies Record<string, StateType>;
export type SyncTypeName = keyof typeof SYNC_TYPES;

/** Change rows read per query while building one answer. */
const SCAN_BATCH = 1000;
/** Change rows one /changes answer reads at most; beyond it the answer is a page with has_more. */
const CHANGES_SCAN_MAX = 20_000;
/** Change rows one query-changes answer may need; beyond it the client re-queries (cannotCalculateChanges). */
const QUERY_SCAN_MAX = 100_000;
/** Retention passes run this often (a pass reads every (mailbox, type)'s oldest rows). */
const PURGE_EVERY_MS = 3600_000;
/** Attempts to read a list and the log at one consistent position while writes go on. */
const SNAPSHOT_ATTEMPTS = 5;

export interface Changes {
  old_state: string | null;
  new_state: string;
  has_more: boolean;
  created: string[];
  updated: string[];
  destroyed: string[];
  sync_required?: boolean;
}

export interface QueryChanges {
  old_query_state: string | null;
  new_query_state: string;
  has_more: boolean;
  removed: string[];
  added: { id: string; index: number }[];
  total: number | null;
}

const invalidState = (param: string): AppError => invalidParameter('Invalid sync state', param);

function decodeState(token: string, param: string): number {
  const m = /^s([0-9a-z]{1,11})$/.exec(token);
  if (!m) throw invalidState(param);
  return parseInt(m[1]!, 36);
}

/** The public id of a change-log object: quotas are logged by mailbox id. */
function publicId(type: StateType, objectId: string): string {
  return type === 'quota' ? `quota_${objectId.slice(4)}` : objectId;
}

interface QueryToken {
  lo: number;
  hi: number;
  /** The last item replaced by an earlier page (its sort key); null: none yet. */
  b: { v: string | number; id: string } | null;
}

function encodeQueryState(t: QueryToken, hash: string): string {
  if (t.b === null && t.lo === t.hi) return `q${t.lo.toString(36)}.${hash}`;
  const b = t.b === null ? '' : Buffer.from(JSON.stringify([t.b.v, t.b.id]), 'utf8').toString('base64url');
  return `q${t.lo.toString(36)}.${t.hi.toString(36)}.${b}.${hash}`;
}

function decodeQueryState(token: string, hash: string): QueryToken {
  const bad = (): AppError => invalidParameter('Invalid query state for this query; omit since_query_state to start again', 'since_query_state');
  const plain = /^q([0-9a-z]{1,11})\.([0-9a-f]{12})$/.exec(token);
  if (plain) {
    if (plain[2] !== hash) throw bad();
    const n = parseInt(plain[1]!, 36);
    return { lo: n, hi: n, b: null };
  }
  const paged = /^q([0-9a-z]{1,11})\.([0-9a-z]{1,11})\.([A-Za-z0-9_-]*)\.([0-9a-f]{12})$/.exec(token);
  if (!paged || paged[4] !== hash) throw bad();
  const lo = parseInt(paged[1]!, 36);
  const hi = parseInt(paged[2]!, 36);
  if (hi < lo) throw bad();
  let b: QueryToken['b'] = null;
  if (paged[3] !== '') {
    try {
      const v: unknown = JSON.parse(Buffer.from(paged[3]!, 'base64url').toString('utf8'));
      if (Array.isArray(v) && v.length === 2 && (typeof v[0] === 'string' || typeof v[0] === 'number') && typeof v[1] === 'string') b = { v: v[0], id: v[1] };
      else throw bad();
    } catch {
      throw bad();
    }
  }
  return { lo, hi, b };
}

function hashOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 12);
}

/** Per object changed after a position: its last change id, and the id of its creation if that is in the window. */
interface Touched {
  last: number;
  createdAt: number | null;
}

/** One consistent view for query-changes: the list now and every change up to `now`. */
interface Snapshot<Row> {
  now: number;
  list: Row[];
  changed: Map<string, Touched>;
}

export class SyncService {
  private readonly ctx: ServiceContext;
  private readonly messages: MessagesService;
  private lastPurge = Number.NEGATIVE_INFINITY;

  constructor(ctx: ServiceContext, messages: MessagesService) {
    this.ctx = ctx;
    this.messages = messages;
  }

  /** GET …/changes for one type: what changed since `since` (or only the current state when omitted). */
  async changes(mailboxId: string, type: StateType, since: string | undefined, limit: number, param = 'since_state'): Promise<Changes> {
    const store = this.ctx.store;
    const latest = await store.changes.latest(mailboxId, type);
    if (since === undefined || since === '') return { old_state: null, new_state: encodeState(latest), has_more: false, created: [], updated: [], destroyed: [] };
    const from = decodeState(since, param);
    if (from > latest) throw invalidState(param);

    // Per object: the first and last kind seen in the window, in log order.
    const seen = new Map<string, { first: string; last: string }>();
    let position = from;
    let hasMore = false;
    let scanned = 0;
    scan: for (;;) {
      const rows = await store.changes.since(mailboxId, type, position, SCAN_BATCH);
      for (const r of rows) {
        const entry = seen.get(r.object_id);
        if (entry) entry.last = r.kind;
        else {
          if (seen.size >= limit) {
            hasMore = true;
            break scan;
          }
          seen.set(r.object_id, { first: r.kind, last: r.kind });
        }
        position = r.change_id;
        if (++scanned >= CHANGES_SCAN_MAX) {
          hasMore = true;
          break scan;
        }
      }
      if (rows.length < SCAN_BATCH) break;
    }
    // Read after the rows: a purge that removed rows we needed has raised the horizon by now.
    if (from < (await store.changes.horizon(mailboxId, type))) {
      return { old_state: since, new_state: encodeState(await store.changes.latest(mailboxId, type)), has_more: false, created: [], updated: [], destroyed: [], sync_required: true };
    }
    const out: Changes = { old_state: since, new_state: encodeState(position), has_more: hasMore, created: [], updated: [], destroyed: [] };
    for (const [id, { first, last }] of seen) {
      const pid = publicId(type, id);
      // Created and destroyed within the window: the client never saw it (RFC 8620 §5.2 allows omitting it).
      if (first === 'created') {
        if (last !== 'destroyed') out.created.push(pid);
      } else if (last === 'destroyed') out.destroyed.push(pid);
      else out.updated.push(pid);
    }
    return out;
  }

  /** GET /mailbox/changes with `types`: one answer per type, each from its own since state. */
  async typedChanges(mailboxId: string, types: SyncTypeName[], since: Partial<Record<SyncTypeName, string>>, limit: number): Promise<Partial<Record<SyncTypeName, Changes>>> {
    const out: Partial<Record<SyncTypeName, Changes>> = {};
    for (const t of types) out[t] = await this.changes(mailboxId, SYNC_TYPES[t], since[t], limit, `${t}_since_state`);
    return out;
  }

  /** Every change of a type after `from`, per object; throws when more than the scan cap. */
  private async changedSince(mailboxId: string, type: StateType, from: number): Promise<{ changed: Map<string, Touched>; now: number }> {
    const changed = new Map<string, Touched>();
    let position = from;
    let scanned = 0;
    for (;;) {
      const rows = await this.ctx.store.changes.since(mailboxId, type, position, SCAN_BATCH);
      for (const r of rows) {
        const t = changed.get(r.object_id);
        if (t) t.last = r.change_id;
        else changed.set(r.object_id, { last: r.change_id, createdAt: r.kind === 'created' ? r.change_id : null });
        position = r.change_id;
      }
      scanned += rows.length;
      if (scanned > QUERY_SCAN_MAX) throw invalidParameter('Too many changes since this query state; omit since_query_state and fetch the list again', 'since_query_state');
      if (rows.length < SCAN_BATCH) break;
    }
    return { changed, now: position };
  }

  /**
   * Reads the list and the changes after `from` at one log position: the newest change id is
   * read before and after the list, and the read repeats if a write landed in between.
   */
  private async snapshot<Row>(mailboxId: string, type: StateType, from: number, readList: () => Promise<Row[]>): Promise<Snapshot<Row>> {
    const store = this.ctx.store;
    for (let attempt = 1; ; attempt++) {
      const before = await store.changes.latest(mailboxId, type);
      const list = await readList();
      const { changed, now } = await this.changedSince(mailboxId, type, from);
      if (now === before || attempt >= SNAPSHOT_ATTEMPTS) return { now: Math.max(now, from), list, changed };
    }
  }

  private async checkQueryFrom(mailboxId: string, type: StateType, lo: number): Promise<void> {
    if (lo > (await this.ctx.store.changes.latest(mailboxId, type))) throw invalidParameter('Invalid query state', 'since_query_state');
  }

  /** After reading the changes: a purge that removed rows we needed has raised the horizon by now. */
  private async checkHorizon(mailboxId: string, type: StateType, lo: number): Promise<void> {
    if (lo < (await this.ctx.store.changes.horizon(mailboxId, type))) {
      throw invalidParameter('Query state is older than the retained change log; omit since_query_state and fetch the list again', 'since_query_state');
    }
  }

  /**
   * One page of query-changes from a snapshot. `boundaryIndex` is the last list position at or
   * before the token's boundary (-1: none). Items are replaced (removed, then added at their index)
   * in list order; `eagerRemove` also removes every changed id at once (needed when the sort key can
   * change, so an item's old position is unknown).
   */
  private page<Row>(
    snap: Snapshot<Row>,
    idOf: (r: Row) => string,
    token: QueryToken,
    boundaryIndex: number,
    limit: number,
    opts: { eagerRemove: boolean; upToIndex: number | null },
  ): { removed: string[]; added: { id: string; index: number }[]; rest: boolean; last: Row | null } {
    const pos = new Map<string, number>();
    snap.list.forEach((r, i) => pos.set(idOf(r), i));
    const removed: string[] = [];
    const low: { id: string; index: number }[] = [];
    const high: { id: string; index: number }[] = [];
    for (const [id, t] of snap.changed) {
      const index = pos.get(id);
      const isNew = t.last > token.hi;
      // Created after the client's newest position: it cannot hold it.
      const unknownToClient = t.createdAt !== null && t.createdAt > token.hi;
      if (index === undefined) {
        if (isNew && !unknownToClient) removed.push(id);
        continue;
      }
      if (opts.eagerRemove && isNew && !unknownToClient) removed.push(id);
      if (index <= boundaryIndex) {
        if (isNew) low.push({ id, index });
      } else if (opts.upToIndex === null || index <= opts.upToIndex) high.push({ id, index });
    }
    // In list order: the changed items before the boundary first (they keep that part right), then
    // the rest. When more than `limit` changed before the boundary, the boundary moves back to the
    // last one taken: everything after it is replaced again on later pages (idempotent).
    const candidates = [...low.sort((a, b) => a.index - b.index), ...high.sort((a, b) => a.index - b.index)];
    const take = candidates.slice(0, limit);
    const added: { id: string; index: number }[] = [];
    const removedSet = new Set(removed);
    for (const { id } of take) {
      const t = snap.changed.get(id)!;
      if (!removedSet.has(id) && !(t.createdAt !== null && t.createdAt > token.hi)) removed.push(id);
      added.push({ id, index: pos.get(id)! });
    }
    added.sort((a, b) => a.index - b.index);
    const lastTaken = take[take.length - 1];
    return { removed, added, rest: take.length < candidates.length, last: lastTaken ? snap.list[lastTaken.index]! : null };
  }

  /** GET /mailbox/messages/query-changes. */
  async messageQueryChanges(
    mailboxId: string,
    q: { filter: ListQuery['filter']; sort: MessageSort; since?: string; limit: number; upToId?: string; calculateTotal: boolean },
  ): Promise<QueryChanges> {
    const filter: MessageFilter = await this.messages.resolveFilter(mailboxId, q.filter);
    const { mailboxId: _m, ...filterOnly } = filter;
    const hash = hashOf({ f: Object.entries(filterOnly).sort(([a], [b]) => (a < b ? -1 : 1)), s: [q.sort.by, q.sort.direction] });
    const store = this.ctx.store;
    const readIds = async (): Promise<string[]> => store.messageQuery.ids(filter, q.sort, Number.MAX_SAFE_INTEGER);

    if (q.since === undefined || q.since === '') {
      for (let attempt = 1; ; attempt++) {
        const before = await store.changes.latest(mailboxId, 'message');
        const total = q.calculateTotal ? await store.messageQuery.count(filter) : null;
        const after = await store.changes.latest(mailboxId, 'message');
        if (before === after || attempt >= SNAPSHOT_ATTEMPTS) return { old_query_state: null, new_query_state: encodeQueryState({ lo: after, hi: after, b: null }, hash), has_more: false, removed: [], added: [], total };
      }
    }
    const token = decodeQueryState(q.since, hash);
    await this.checkQueryFrom(mailboxId, 'message', token.lo);
    const snap = await this.snapshot(mailboxId, 'message', token.lo, readIds);
    await this.checkHorizon(mailboxId, 'message', token.lo);
    const pos = new Map(snap.list.map((id, i) => [id, i]));

    // Where the earlier pages stopped, in today's list (sort keys of messages never change).
    let boundaryIndex = -1;
    if (token.b !== null) {
      const at = pos.get(token.b.id);
      if (at !== undefined) boundaryIndex = at;
      else {
        const reverse: MessageSort = { by: q.sort.by, direction: q.sort.direction === 'asc' ? 'desc' : 'asc' };
        const [nearest] = await store.messageQuery.list(filter, reverse, 0, token.b);
        boundaryIndex = nearest ? (pos.get(nearest.id) ?? -1) : -1;
      }
    }
    // up_to_id (RFC 8620 §5.6) only when the filter reads immutable properties alone.
    const mutable = filter.folderId !== undefined || filter.keyword !== undefined || filter.notKeyword !== undefined || filter.isUnread !== undefined;
    let upToIndex: number | null = null;
    if (q.upToId !== undefined && q.upToId !== '' && !mutable && !snap.changed.has(q.upToId)) upToIndex = pos.get(q.upToId) ?? null;

    const p = this.page(snap, (id) => id, token, boundaryIndex, q.limit, { eagerRemove: false, upToIndex });
    let next: QueryToken = { lo: snap.now, hi: snap.now, b: null };
    if (p.rest) {
      let b = token.b;
      if (p.last !== null) {
        const row = await store.messages.get(p.last);
        if (row) b = { v: sortValue(row, q.sort.by), id: row.id };
      }
      next = { lo: token.lo, hi: snap.now, b };
    }
    return {
      old_query_state: q.since,
      new_query_state: encodeQueryState(next, hash),
      has_more: p.rest,
      removed: p.removed,
      added: p.added,
      total: q.calculateTotal ? snap.list.length : null,
    };
  }

  /** GET /mailbox/folders/query-changes: the folder list in its order (sort_order, then id). */
  async folderQueryChanges(mailboxId: string, since: string | undefined, limit: number): Promise<QueryChanges> {
    const hash = hashOf('folders');
    const store = this.ctx.store;
    if (since === undefined || since === '') {
      const now = await store.changes.latest(mailboxId, 'folder');
      return { old_query_state: null, new_query_state: encodeQueryState({ lo: now, hi: now, b: null }, hash), has_more: false, removed: [], added: [], total: null };
    }
    const token = decodeQueryState(since, hash);
    await this.checkQueryFrom(mailboxId, 'folder', token.lo);
    const snap = await this.snapshot(mailboxId, 'folder', token.lo, () => store.folders.listForMailbox(mailboxId));
    await this.checkHorizon(mailboxId, 'folder', token.lo);
    // A folder's sort_order can change: compare keys, and remove every changed folder at once.
    const key = (r: FolderRow): [number, string] => [r.sort_order ?? 0, r.id];
    const atOrBefore = (r: FolderRow, b: { v: string | number; id: string }): boolean => {
      const [o, id] = key(r);
      const bo = Number(b.v);
      return o < bo || (o === bo && id <= b.id);
    };
    let boundaryIndex = -1;
    if (token.b !== null) snap.list.forEach((r, i) => {
      if (atOrBefore(r, token.b!)) boundaryIndex = i;
    });
    const p = this.page(snap, (r) => r.id, token, boundaryIndex, limit, { eagerRemove: true, upToIndex: null });
    let next: QueryToken = { lo: snap.now, hi: snap.now, b: null };
    if (p.rest) next = { lo: token.lo, hi: snap.now, b: p.last ? { v: key(p.last)[0], id: p.last.id } : token.b };
    return { old_query_state: since, new_query_state: encodeQueryState(next, hash), has_more: p.rest, removed: p.removed, added: p.added, total: null };
  }

  /** The maintenance worker's hook: a retention pass at most once per PURGE_EVERY_MS. */
  async maybePurgeOldChanges(): Promise<number> {
    const now = this.ctx.clock.now();
    if (now - this.lastPurge < PURGE_EVERY_MS) return 0;
    this.lastPurge = now;
    return this.purgeOldChanges();
  }

  /** Retention: drops change rows older than the configured days (see ChangesRepo.purgeBefore); returns rows deleted. */
  async purgeOldChanges(maxRounds = 50): Promise<number> {
    const cutoff = iso(this.ctx.clock.now() - this.ctx.config.changeRetentionDays * 24 * 3600_000);
    let total = 0;
    for (let round = 0; round < maxRounds; round++) {
      const n = await this.ctx.store.transaction((tx) => tx.changes.purgeBefore(cutoff));
      total += n;
      if (n === 0) break;
    }
    return total;
  }
}
