// Mailbox API messages: list, count, search snippets, get, PATCH, DELETE, raw body, clean
// content, batch get / update / delete, and attachment download (bearer or download_token, Range).
import { invalidParameter } from '../../../../core/errors.ts';
import { errorBody } from '../../errors.ts';
import { BODY_CHARS_DEFAULT } from '../../../../services/mail/messages.ts';
import { etagOf } from '../../../../services/etag.ts';
import { defineRoute, limitOf, type RouteDeps } from '../../route.ts';
import { contentOptions, filterFromQuery, pagination, sortFromQuery, type MailboxPrincipal } from './common.ts';

/** Parses a single `bytes=` range against a size; null = whole body; throws for malformed. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | 'unsatisfiable' {
  if (header === undefined || header === '') return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) throw invalidParameter('Range must be a single bytes=start-end range', 'Range');
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) throw invalidParameter('Range end is before its start', 'Range');
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

export function registerMessageRoutes(deps: RouteDeps): void {
  const messages = deps.services.messages;

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/messages',
    surface: 'mailbox',
    handler: async ({ principal, query }) => {
      // The summaries come as JSON text, written from the rows (services/mail/views.ts summaryJson).
      const page = await messages.listJson(principal.mailboxId, { filter: filterFromQuery(query), sort: sortFromQuery(query), limit: limitOf(query), cursor: query.cursor });
      return { dataJson: page.json, pagination: pagination(page) };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/messages/count',
    surface: 'mailbox',
    handler: async ({ principal, query }) => ({ data: await messages.count(principal.mailboxId, filterFromQuery(query)) }),
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/messages/search-snippets',
    surface: 'mailbox',
    handler: async ({ principal, query }) => {
      const { q, threadId, ...filter } = filterFromQuery(query);
      if (threadId !== undefined) throw invalidParameter('thread_id is not supported on search snippets', 'thread_id');
      const ids = typeof query.message_ids === 'string' && query.message_ids !== '' ? String(query.message_ids).split(',').map((s) => s.trim()).filter(Boolean) : undefined;
      if (ids && ids.length > 100) throw invalidParameter('message_ids takes at most 100 ids', 'message_ids');
      return { data: await messages.snippets(principal.mailboxId, q ?? '', filter, ids, limitOf(query)) };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'POST',
    path: '/mailbox/messages:batch-get',
    surface: 'mailbox',
    handler: async ({ principal, body }) => {
      const part = body.part ?? 'auto';
      const o = contentOptions({ ...body, part: part === 'both' ? 'auto' : part }, { maxBodyChars: BODY_CHARS_DEFAULT });
      return { data: await messages.batchGet(principal.mailboxId, body.ids, body.body_mode ?? 'none', part, o) };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'POST',
    path: '/mailbox/messages:batch-update',
    surface: 'mailbox',
    handler: async ({ principal, body }) => ({ data: await messages.batchUpdate(principal.mailboxId, body) }),
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'POST',
    path: '/mailbox/messages:batch-delete',
    surface: 'mailbox',
    handler: async ({ principal, body }) => ({ data: await messages.batchDelete(principal.mailboxId, body) }),
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/messages/{message_id}',
    surface: 'mailbox',
    handler: async ({ principal, params, headers }) => {
      const { view, etag } = await messages.get(principal.mailboxId, params.message_id ?? '');
      // Attachment URLs expire, so a conditional GET of a message with attachments answers 200 with fresh URLs.
      const hasAttachments = Array.isArray(view.attachments) && view.attachments.length > 0;
      return { data: view, ...(hasAttachments && headers['if-none-match'] ? { headers: { ETag: etag } } : { etag }) };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'PATCH',
    path: '/mailbox/messages/{message_id}',
    surface: 'mailbox',
    handler: async ({ principal, params, body, checkIfMatch }) => {
      const { view, etag } = await messages.update(principal.mailboxId, params.message_id ?? '', body, checkIfMatch);
      return { data: view, etag };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'DELETE',
    path: '/mailbox/messages/{message_id}',
    surface: 'mailbox',
    handler: async ({ principal, params, query, checkIfMatch }) => {
      const id = params.message_id ?? '';
      await messages.delete(principal.mailboxId, id, query.permanent === true || query.permanent === 'true', checkIfMatch);
      return { data: { deleted: true, id } };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/messages/{message_id}/body',
    surface: 'mailbox',
    handler: async ({ principal, params, query }) => {
      const body = await messages.rawBody(principal.mailboxId, params.message_id ?? '', query.part ?? 'both', typeof query.max_body_chars === 'number' ? query.max_body_chars : BODY_CHARS_DEFAULT);
      return { data: body, etag: etagOf([body.id, body.part, body.body.truncated_at_chars, body.states.email_state]) };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/messages/{message_id}/content',
    surface: 'mailbox',
    handler: async ({ principal, params, query }) => {
      const content = await messages.content(principal.mailboxId, params.message_id ?? '', contentOptions(query, { maxBodyChars: BODY_CHARS_DEFAULT }));
      const { attachments: _urls, ...stable } = content;
      return { data: content, etag: etagOf(stable) };
    },
  });

  defineRoute<MailboxPrincipal | null>(deps, {
    method: 'GET',
    path: '/mailbox/messages/{message_id}/attachments/{attachment_id}',
    surface: 'mailbox',
    tokenAuth: (q) => typeof q.download_token === 'string' && q.download_token !== '',
    handler: async ({ principal, params, query, headers, requestId }) => {
      const messageId = params.message_id ?? '';
      const attId = params.attachment_id ?? '';
      const att = principal ? await messages.attachment(principal.mailboxId, messageId, attId) : await messages.attachmentByToken(messageId, attId, String(query.download_token));
      const size = att.data.byteLength;
      const disposition = `attachment${att.filename ? `; filename*=UTF-8''${encodeURIComponent(att.filename)}` : ''}`;
      const range = parseRange(typeof headers.range === 'string' ? headers.range : undefined, size);
      if (range === 'unsatisfiable') {
        // 416 with the error envelope (the spec lists only 400 for bad ranges; see spec-deviations.ts).
        const body = JSON.stringify(errorBody(requestId, 'invalid_parameter', 'Range is outside the attachment', { param: 'Range' }));
        return { status: 416, raw: { contentType: 'application/json', body }, headers: { 'Content-Range': `bytes */${size}` } };
      }
      const base = { 'Accept-Ranges': 'bytes', 'Content-Disposition': disposition };
      if (range === null) return { raw: { contentType: att.contentType, body: att.data }, headers: base };
      return {
        status: 206,
        raw: { contentType: att.contentType, body: att.data.subarray(range.start, range.end + 1) },
        headers: { ...base, 'Content-Range': `bytes ${range.start}-${range.end}/${size}` },
      };
    },
  });
}
