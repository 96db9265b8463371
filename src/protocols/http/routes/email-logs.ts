// Outbound delivery logs and metrics (spec tag Emails): the team's sends, newest first, with the
// spec's filters; one log with its per-recipient outcomes; aggregate counts.
import { LIST_LIMIT_MAX } from '../../../config/limits.ts';
import type { Principal } from '../../../services/credentials.ts';
import { etagOf } from '../../../services/etag.ts';
import { defineRoute, limitOf, type RouteDeps } from '../route.ts';

type Root = Extract<Principal, { kind: 'root' }>;

/** Spec: email logs default to 25 per page. */
export const EMAIL_LOGS_LIMIT_DEFAULT = 25;

const optional = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function registerEmailLogRoutes(deps: RouteDeps): void {
  const log = deps.services.sendLog;

  defineRoute<Root>(deps, {
    method: 'GET',
    path: '/emails/logs',
    surface: 'management',
    handler: async ({ principal, query }) => {
      const page = await log.listLogs(principal.teamId, {
        limit: Math.min(limitOf(query, EMAIL_LOGS_LIMIT_DEFAULT), LIST_LIMIT_MAX),
        ...(optional(query.cursor) ? { cursor: optional(query.cursor)! } : {}),
        ...(optional(query.status) ? { status: query.status as 'pending' | 'sent' | 'failed' | 'rejected' } : {}),
        ...(optional(query.from_date) ? { fromDate: optional(query.from_date)! } : {}),
        ...(optional(query.to_date) ? { toDate: optional(query.to_date)! } : {}),
        ...(optional(query.provider_id) ? { providerId: optional(query.provider_id)! } : {}),
        ...(optional(query.search) ? { search: optional(query.search)! } : {}),
      });
      return { data: page.items, pagination: { has_more: page.hasMore, ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}) } };
    },
  });

  defineRoute<Root>(deps, {
    method: 'GET',
    path: '/emails/logs/{public_id}',
    surface: 'management',
    handler: async ({ principal, params }) => {
      const view = await log.getLog(principal.teamId, params.public_id ?? '');
      return { data: view, etag: etagOf(view) };
    },
  });

  defineRoute<Root>(deps, {
    method: 'GET',
    path: '/emails/metrics',
    surface: 'management',
    handler: async ({ principal, query }) => ({
      data: await log.metrics(principal.teamId, {
        ...(optional(query.window) ? { window: query.window as '24h' | '7d' | '30d' } : {}),
        ...(optional(query.from_date) ? { fromDate: optional(query.from_date)! } : {}),
        ...(optional(query.to_date) ? { toDate: optional(query.to_date)! } : {}),
        ...(optional(query.granularity) ? { granularity: query.granularity as 'hourly' | 'daily' } : {}),
        ...(optional(query.provider_id) ? { providerId: optional(query.provider_id)! } : {}),
      }),
    }),
  });
}
