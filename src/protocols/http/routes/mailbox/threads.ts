// Mailbox API threads: list, get, messages, clean content.
import { etagOf } from '../../../../services/etag.ts';
import { defineRoute, limitOf, type RouteDeps } from '../../route.ts';
import { contentOptions, filterFromQuery, pagination, type MailboxPrincipal } from './common.ts';

export function registerThreadRoutes(deps: RouteDeps): void {
  const threads = deps.services.threads;

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/threads',
    surface: 'mailbox',
    handler: async ({ principal, query }) => {
      const f = filterFromQuery(query);
      const page = await threads.listJson(
        principal.mailboxId,
        { ...f, ...(typeof query.participant === 'string' && query.participant !== '' ? { participant: query.participant } : {}) },
        query.sort_direction === 'asc' ? 'asc' : 'desc',
        limitOf(query),
        query.cursor,
      );
      return { dataJson: page.json, pagination: pagination(page), meta: { query_state: page.queryState } };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/threads/{thread_id}',
    surface: 'mailbox',
    handler: async ({ principal, params }) => {
      const { view, etag } = await threads.get(principal.mailboxId, params.thread_id ?? '');
      return { data: view, etag };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/threads/{thread_id}/messages',
    surface: 'mailbox',
    handler: async ({ principal, params, query }) => {
      const page = await threads.messagesOf(principal.mailboxId, params.thread_id ?? '', query.sort === 'desc' ? 'desc' : 'asc', limitOf(query), query.cursor);
      return { data: page.items, pagination: pagination(page) };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/threads/{thread_id}/content',
    surface: 'mailbox',
    handler: async ({ principal, params, query }) => {
      const page = await threads.content(principal.mailboxId, params.thread_id ?? '', contentOptions(query, { maxBodyChars: 25_000 }), query.sort === 'desc' ? 'desc' : 'asc', limitOf(query, 25), query.cursor);
      const etag = etagOf([page.items.map((i) => ({ ...i, attachments: undefined })), page.meta.states]);
      return { data: page.items, pagination: pagination(page), meta: page.meta, etag };
    },
  });
}
