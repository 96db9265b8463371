// Opaque cursors for keyset pagination: base64url of the last item's sort key. Keyset (not offset)
// paging is stable under inserts: a new row never shifts the rows of a page already handed out.
import { invalidParameter } from './errors.ts';

export interface PageKey {
  /** The sort value of the last item (a timestamp, a number, a name). */
  v: string | number;
  /** The id of the last item: the tie-breaker. */
  id: string;
}

export function encodeCursor(key: PageKey): string {
  return Buffer.from(JSON.stringify([key.v, key.id]), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string | undefined): PageKey | null {
  if (cursor === undefined || cursor === '') return null;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && parsed.length === 2 && (typeof parsed[0] === 'string' || typeof parsed[0] === 'number') && typeof parsed[1] === 'string') {
      return { v: parsed[0], id: parsed[1] };
    }
  } catch {
    // fall through
  }
  throw invalidParameter('cursor is not a cursor this server issued', 'cursor');
}

export interface Page<T> {
  items: T[];
  hasMore: boolean;
  nextCursor?: string;
}

/** Builds a page from `limit + 1` rows fetched in order. */
export function pageOf<T>(rows: T[], limit: number, keyOf: (row: T) => PageKey): Page<T> {
  const hasMore = rows.length > limit;
  const items = hasMore ? rows.slice(0, limit) : rows;
  const last = items[items.length - 1];
  return hasMore && last !== undefined ? { items, hasMore, nextCursor: encodeCursor(keyOf(last)) } : { items, hasMore };
}
