// Webhooks (spec tag Webhooks): list, create, get, patch, delete, deliveries, delivery payload,
// rotate-secret and test.
import type { Principal } from '../../../services/credentials.ts';
import { etagOf } from '../../../services/etag.ts';
import { checkWebhookInput } from '../../../services/webhooks.ts';
import { defineRoute, limitOf, type RouteDeps } from '../route.ts';

type Root = Extract<Principal, { kind: 'root' }>;

/** Spec default page size for delivery attempts. */
const DELIVERIES_LIMIT_DEFAULT = 25;

export function registerWebhookRoutes(deps: RouteDeps): void {
  const webhooks = deps.services.webhooks;

  defineRoute<Root>(deps, {
    method: 'GET',
    path: '/webhooks',
    surface: 'management',
    handler: async ({ principal, query }) => {
      const page = await webhooks.list(principal.teamId, limitOf(query), query.cursor);
      return { data: page.items, pagination: { has_more: page.hasMore, ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}) } };
    },
  });

  defineRoute<Root>(deps, {
    method: 'POST',
    path: '/webhooks',
    surface: 'management',
    idempotent: true,
    precheck: checkWebhookInput,
    handler: async ({ principal, body }) => {
      const view = await webhooks.create(principal.teamId, body);
      return { status: 201, data: view, headers: { Location: `/api/v1/webhooks/${view.id}` } };
    },
  });

  defineRoute<Root>(deps, {
    method: 'GET',
    path: '/webhooks/{public_id}',
    surface: 'management',
    handler: async ({ principal, params }) => {
      const view = await webhooks.get(principal.teamId, params.public_id ?? '');
      return { data: view, etag: etagOf(view) };
    },
  });

  defineRoute<Root>(deps, {
    method: 'PATCH',
    path: '/webhooks/{public_id}',
    surface: 'management',
    precheck: checkWebhookInput,
    handler: async ({ principal, params, body, checkIfMatch }) => {
      const view = await webhooks.update(principal.teamId, params.public_id ?? '', body, (current) => checkIfMatch(etagOf(current)));
      return { data: view, etag: etagOf(view) };
    },
  });

  defineRoute<Root>(deps, {
    method: 'DELETE',
    path: '/webhooks/{public_id}',
    surface: 'management',
    handler: async ({ principal, params }) => {
      const id = params.public_id ?? '';
      await webhooks.delete(principal.teamId, id);
      return { data: { deleted: true, id } };
    },
  });

  defineRoute<Root>(deps, {
    method: 'GET',
    path: '/webhooks/{public_id}/deliveries',
    surface: 'management',
    handler: async ({ principal, params, query }) => {
      const page = await webhooks.deliveries(principal.teamId, params.public_id ?? '', {
        limit: limitOf(query, DELIVERIES_LIMIT_DEFAULT),
        ...(typeof query.cursor === 'string' ? { cursor: query.cursor } : {}),
        ...(typeof query.event_type === 'string' ? { event_type: query.event_type } : {}),
        ...(typeof query.result === 'string' ? { result: query.result } : {}),
      });
      return { data: page.items, pagination: { has_more: page.hasMore, ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}) } };
    },
  });

  defineRoute<Root>(deps, {
    method: 'GET',
    path: '/webhooks/{public_id}/deliveries/{delivery_id}/payload',
    surface: 'management',
    handler: async ({ principal, params }) => ({ data: await webhooks.payload(principal.teamId, params.public_id ?? '', params.delivery_id ?? '') }),
  });

  defineRoute<Root>(deps, {
    method: 'POST',
    path: '/webhooks/{public_id}/rotate-secret',
    surface: 'management',
    idempotent: true,
    handler: async ({ principal, params }) => ({ data: await webhooks.rotateSecret(principal.teamId, params.public_id ?? '') }),
  });

  defineRoute<Root>(deps, {
    method: 'POST',
    path: '/webhooks/{public_id}/test',
    surface: 'management',
    idempotent: true,
    handler: async ({ principal, params }) => ({ data: await webhooks.test(principal.teamId, params.public_id ?? '') }),
  });
}
