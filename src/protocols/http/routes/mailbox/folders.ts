// Mailbox API folders: list, create, get, patch, delete (only empty custom folders).
import { etagOf } from '../../../../services/etag.ts';
import { defineRoute, limitOf, type RouteDeps } from '../../route.ts';
import { pagination, type MailboxPrincipal } from './common.ts';

export function registerFolderRoutes(deps: RouteDeps): void {
  const folders = deps.services.folders;
  const etag = etagOf;

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/folders',
    surface: 'mailbox',
    handler: async ({ principal, query }) => {
      const page = await folders.list(principal.mailboxId, limitOf(query), query.cursor);
      return { data: page.items, pagination: pagination(page) };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'POST',
    path: '/mailbox/folders',
    surface: 'mailbox',
    handler: async ({ principal, body }) => {
      const view = await folders.create(principal.mailboxId, body);
      return { status: 201, data: view, etag: etag(view), headers: { Location: `/api/v1/mailbox/folders/${view.id}` } };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/folders/{folder_id}',
    surface: 'mailbox',
    handler: async ({ principal, params }) => {
      const view = await folders.get(principal.mailboxId, params.folder_id ?? '');
      return { data: view, etag: etag(view) };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'PATCH',
    path: '/mailbox/folders/{folder_id}',
    surface: 'mailbox',
    handler: async ({ principal, params, body, checkIfMatch }) => {
      checkIfMatch(etag(await folders.get(principal.mailboxId, params.folder_id ?? '')));
      const view = await folders.patch(principal.mailboxId, params.folder_id ?? '', body);
      return { data: view, etag: etag(view) };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'DELETE',
    path: '/mailbox/folders/{folder_id}',
    surface: 'mailbox',
    handler: async ({ principal, params, checkIfMatch }) => {
      checkIfMatch(etag(await folders.get(principal.mailboxId, params.folder_id ?? '')));
      const id = await folders.delete(principal.mailboxId, params.folder_id ?? '');
      return { data: { deleted: true, id } };
    },
  });
}
