// Mailbox API sync: GET /mailbox/changes (legacy message-only and typed), the per-resource
// /changes of folders, submissions and quotas, and query-changes for messages and folders.
import { invalidParameter } from '../../../../core/errors.ts';
import { SYNC_TYPES, type SyncTypeName } from '../../../../services/mail/sync.ts';
import { defineRoute, limitOf, type RouteDeps } from '../../route.ts';
import { filterFromQuery, sortFromQuery, type MailboxPrincipal } from './common.ts';

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function registerSyncRoutes(deps: RouteDeps): void {
  const sync = deps.services.sync;

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/changes',
    surface: 'mailbox',
    handler: async ({ principal, query }) => {
      const limit = limitOf(query);
      const typesParam = str(query.types);
      if (typesParam === undefined) return { data: await sync.changes(principal.mailboxId, 'message', str(query.since_state), limit) };
      const types: SyncTypeName[] = [];
      for (const raw of typesParam.split(',')) {
        const t = raw.trim();
        if (t === '') continue;
        if (!(t in SYNC_TYPES)) throw invalidParameter(`Unknown type ${JSON.stringify(t)}; use ${Object.keys(SYNC_TYPES).join(', ')}`, 'types');
        if (!types.includes(t as SyncTypeName)) types.push(t as SyncTypeName);
      }
      if (types.length === 0) throw invalidParameter('types lists no type', 'types');
      const since: Partial<Record<SyncTypeName, string>> = {};
      for (const t of types) {
        const s = str(query[`${t}_since_state`]) ?? (t === 'messages' ? str(query.since_state) : undefined);
        if (s !== undefined) since[t] = s;
      }
      return { data: { types: await sync.typedChanges(principal.mailboxId, types, since, limit) } };
    },
  });

  for (const [path, type] of [
    ['/mailbox/folders/changes', 'folder'],
    ['/mailbox/submissions/changes', 'submission'],
    ['/mailbox/quotas/changes', 'quota'],
  ] as const) {
    defineRoute<MailboxPrincipal>(deps, {
      method: 'GET',
      path,
      surface: 'mailbox',
      handler: async ({ principal, query }) => ({ data: await sync.changes(principal.mailboxId, type, str(query.since_state), limitOf(query)) }),
    });
  }

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/messages/query-changes',
    surface: 'mailbox',
    handler: async ({ principal, query }) => {
      if (query.thread_id !== undefined) throw invalidParameter('thread_id is not supported on query-changes', 'thread_id');
      const since = str(query.since_query_state);
      const upToId = str(query.up_to_id);
      const data = await sync.messageQueryChanges(principal.mailboxId, {
        filter: filterFromQuery(query),
        sort: sortFromQuery(query),
        limit: limitOf(query),
        calculateTotal: query.calculate_total === true,
        ...(since !== undefined ? { since } : {}),
        ...(upToId !== undefined ? { upToId } : {}),
      });
      return { data };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/folders/query-changes',
    surface: 'mailbox',
    handler: async ({ principal, query }) => ({ data: await sync.folderQueryChanges(principal.mailboxId, str(query.since_query_state), limitOf(query)) }),
  });
}
