// Shared pieces of the Mailbox API routes: the principal type, the message filter set (F) read
// from the query string, and the clean-content options.
import { invalidParameter } from '../../../../core/errors.ts';
import type { Principal } from '../../../../services/credentials.ts';
import type { ContentOptions } from '../../../../services/mail/messages.ts';
import type { MessageFilter, SortBy } from '../../../../store/index.ts';

export type MailboxPrincipal = Extract<Principal, { kind: 'mailbox' }>;

type Query = Record<string, any>;

export function filterFromQuery(q: Query): Omit<MessageFilter, 'mailboxId'> {
  const f: Omit<MessageFilter, 'mailboxId'> = {};
  const str = (name: string): string | undefined => (typeof q[name] === 'string' && q[name] !== '' ? (q[name] as string) : undefined);
  const set = <K extends keyof typeof f>(key: K, value: (typeof f)[K] | undefined): void => {
    if (value !== undefined) f[key] = value;
  };
  set('folderId', str('folder_id'));
  set('threadId', str('thread_id'));
  set('q', str('q'));
  set('from', str('from'));
  set('to', str('to'));
  set('cc', str('cc'));
  set('bcc', str('bcc'));
  set('subject', str('subject'));
  set('body', str('body'));
  set('headerName', str('header_name'));
  set('headerValue', str('header_value'));
  set('keyword', str('keyword'));
  set('notKeyword', str('not_keyword'));
  set('after', str('after') !== undefined ? isoParam(str('after')!, 'after') : undefined);
  set('before', str('before') !== undefined ? isoParam(str('before')!, 'before') : undefined);
  if (typeof q.min_size_bytes === 'number') f.minSize = q.min_size_bytes;
  if (typeof q.max_size_bytes === 'number') f.maxSize = q.max_size_bytes;
  if (typeof q.has_attachment === 'boolean') f.hasAttachment = q.has_attachment;
  if (typeof q.is_unread === 'boolean') f.isUnread = q.is_unread;
  return f;
}


/** Timestamps in queries: RFC 3339 / ISO 8601, normalised to the stored form for comparison. */
export function isoParam(value: string, name: string): string {
  const t = Date.parse(value);
  if (!Number.isFinite(t) || !/^\d{4}-\d{2}-\d{2}/.test(value)) throw invalidParameter(`${name} must be an ISO 8601 timestamp`, name);
  return new Date(t).toISOString();
}

export function sortFromQuery(q: Query, fallback: SortBy = 'received_at'): { by: SortBy; direction: 'asc' | 'desc' } {
  return { by: (q.sort_by as SortBy | undefined) ?? fallback, direction: (q.sort_direction as 'asc' | 'desc' | undefined) ?? 'desc' };
}

export function contentOptions(q: Query, defaults: { maxBodyChars: number }): ContentOptions {
  return {
    part: (q.part as ContentOptions['part'] | undefined) ?? 'auto',
    maxBodyChars: typeof q.max_body_chars === 'number' ? q.max_body_chars : defaults.maxBodyChars,
    stripSignature: q.strip_signature ?? true,
    stripQuotes: q.strip_quotes ?? true,
    includeLinks: q.include_links ?? true,
    includeHtml: q.include_html ?? false,
    includeHeaders: q.include_headers ?? 'selected',
    includeAttachments: q.include_attachments ?? 'metadata',
  };
}

export function pagination(page: { hasMore: boolean; nextCursor?: string }) {
  return { has_more: page.hasMore, ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}) };
}
