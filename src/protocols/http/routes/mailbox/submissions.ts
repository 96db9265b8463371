// Mailbox API submissions (JMAP EmailSubmission): list with every filter and sort, and one by id.
// /mailbox/submissions/changes is served from the change log with the other change feeds.
import { invalidParameter } from '../../../../core/errors.ts';
import { etagOf } from '../../../../services/etag.ts';
import { defineRoute, limitOf, type RouteDeps } from '../../route.ts';
import { pagination, type MailboxPrincipal } from './common.ts';

/** Ids per csv filter (spec: "maximum 100"). */
const CSV_IDS_MAX = 100;

function csv(q: Record<string, unknown>, name: string): string[] | undefined {
  const v = q[name];
  if (typeof v !== 'string' || v === '') return undefined;
  const ids = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (ids.length > CSV_IDS_MAX) throw invalidParameter(`${name} takes at most ${CSV_IDS_MAX} ids`, name);
  return ids;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function registerSubmissionRoutes(deps: RouteDeps): void {
  const log = deps.services.sendLog;

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/submissions',
    surface: 'mailbox',
    handler: async ({ principal, query }) => {
      const identityIds = csv(query, 'identity_ids');
      const emailIds = csv(query, 'email_ids');
      const threadIds = csv(query, 'thread_ids');
      const after = str(query.after);
      const before = str(query.before);
      const page = await log.listSubmissions(principal.mailboxId, {
        limit: limitOf(query),
        ...(str(query.cursor) ? { cursor: str(query.cursor)! } : {}),
        ...(identityIds ? { identityIds } : {}),
        ...(emailIds ? { emailIds } : {}),
        ...(threadIds ? { threadIds } : {}),
        ...(str(query.undo_status) ? { undoStatus: query.undo_status as 'pending' | 'final' | 'canceled' } : {}),
        ...(after ? { after } : {}),
        ...(before ? { before } : {}),
        ...(str(query.sort_by) ? { sortBy: query.sort_by as 'send_at' | 'email_id' | 'thread_id' } : {}),
        ...(str(query.sort_direction) ? { sortDirection: query.sort_direction as 'asc' | 'desc' } : {}),
      });
      return { data: page.items, pagination: pagination(page) };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/submissions/{submission_id}',
    surface: 'mailbox',
    handler: async ({ principal, params }) => {
      const view = await log.getSubmission(principal.mailboxId, params.submission_id ?? '');
      return { data: view, etag: etagOf(view) };
    },
  });

  // Not in the published spec (an extension, see spec-deviations.ts): cancel inside the undo window.
  defineRoute<MailboxPrincipal>(deps, {
    method: 'PATCH',
    path: '/mailbox/submissions/{submission_id}',
    surface: 'mailbox',
    handler: async ({ principal, params, checkIfMatch }) => {
      const id = params.submission_id ?? '';
      checkIfMatch(etagOf(await log.getSubmission(principal.mailboxId, id)));
      await deps.services.outbound.cancel(principal.mailboxId, id);
      const view = await log.getSubmission(principal.mailboxId, id);
      return { data: view, etag: etagOf(view) };
    },
  });
}
