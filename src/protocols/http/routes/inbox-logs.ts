// Incoming logs (spec tag Inboxes): the team's inbound deliveries, newest first, with the spec's
// filters (mailbox, event type, UTC date range, search) and one log by id.
import { LIST_LIMIT_MAX } from '../../../config/limits.ts';
import type { Principal } from '../../../services/credentials.ts';
import { IncomingLogsService } from '../../../services/mail/incoming-logs.ts';
import { defineRoute, limitOf, type RouteDeps } from '../route.ts';

type Root = Extract<Principal, { kind: 'root' }>;

/** Spec: inbox logs default to 25 per page (API-MAP: "25 for email logs, inbox logs ..."). */
export const INBOX_LOGS_LIMIT_DEFAULT = 25;

const optional = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function registerInboxLogRoutes(deps: RouteDeps): void {
  const logs = new IncomingLogsService(deps.services);

  defineRoute<Root>(deps, {
    method: 'GET',
    path: '/inboxes/logs',
    surface: 'management',
    handler: async ({ principal, query }) => {
      const eventType = optional(query.event_type) as 'message.received' | 'message.received.spam' | undefined;
      const page = await logs.list(principal.teamId, {
        limit: Math.min(limitOf(query, INBOX_LOGS_LIMIT_DEFAULT), LIST_LIMIT_MAX),
        cursor: optional(query.cursor),
        mailboxId: optional(query.mailbox_id),
        eventType,
        fromDate: optional(query.from_date),
        toDate: optional(query.to_date),
        search: optional(query.search),
      });
      return { data: page.items, pagination: { has_more: page.hasMore, ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}) } };
    },
  });

  defineRoute<Root>(deps, {
    method: 'GET',
    path: '/inboxes/logs/{public_id}',
    surface: 'management',
    handler: async ({ principal, params }) => ({ data: await logs.get(principal.teamId, params.public_id ?? '') }),
  });
}
