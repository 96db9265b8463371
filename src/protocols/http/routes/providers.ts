// Sending accounts (spec tag Sending accounts): custom SMTP relays Mailmux delivers through.
// Credentials are never returned; test does a real SMTP handshake and AUTH.
import type { Principal } from '../../../services/credentials.ts';
import { etagOf } from '../../../services/etag.ts';
import type { ProviderInput } from '../../../services/send/providers.ts';
import { defineRoute, limitOf, type RouteDeps } from '../route.ts';

type Root = Extract<Principal, { kind: 'root' }>;

const optional = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function registerProviderRoutes(deps: RouteDeps): void {
  const providers = deps.services.providers;

  defineRoute<Root>(deps, {
    method: 'GET',
    path: '/providers',
    surface: 'management',
    handler: async ({ principal, query }) => {
      const page = await providers.list(principal.teamId, limitOf(query), optional(query.cursor), {
        ...(optional(query.status) ? { status: optional(query.status)! } : {}),
        ...(optional(query.type) ? { type: optional(query.type)! } : {}),
      });
      return { data: page.items, pagination: { has_more: page.hasMore, ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}) } };
    },
  });

  defineRoute<Root>(deps, {
    method: 'GET',
    path: '/providers/stats',
    surface: 'management',
    handler: async ({ principal }) => ({ data: await providers.stats(principal.teamId) }),
  });

  defineRoute<Root>(deps, {
    method: 'GET',
    path: '/providers/usage',
    surface: 'management',
    handler: async ({ principal }) => ({ data: await providers.usage(principal.teamId) }),
  });

  defineRoute<Root>(deps, {
    method: 'POST',
    path: '/providers',
    surface: 'management',
    idempotent: true,
    handler: async ({ principal, body }) => {
      const view = await providers.create(principal.teamId, body as ProviderInput);
      return { status: 201, data: view, etag: etagOf(view), headers: { Location: `/api/v1/providers/${String(view.id)}` } };
    },
  });

  defineRoute<Root>(deps, {
    method: 'GET',
    path: '/providers/{public_id}',
    surface: 'management',
    handler: async ({ principal, params }) => {
      const view = await providers.get(principal.teamId, params.public_id ?? '');
      return { data: view, etag: etagOf(view) };
    },
  });

  defineRoute<Root>(deps, {
    method: 'PATCH',
    path: '/providers/{public_id}',
    surface: 'management',
    handler: async ({ principal, params, body, checkIfMatch }) => {
      checkIfMatch(etagOf(await providers.get(principal.teamId, params.public_id ?? '')));
      const view = await providers.update(principal.teamId, params.public_id ?? '', body as ProviderInput);
      return { data: view, etag: etagOf(view) };
    },
  });

  defineRoute<Root>(deps, {
    method: 'DELETE',
    path: '/providers/{public_id}',
    surface: 'management',
    handler: async ({ principal, params }) => ({ data: { deleted: true, id: await providers.delete(principal.teamId, params.public_id ?? '') } }),
  });

  for (const [action, active] of [['activate', true], ['deactivate', false]] as const) {
    defineRoute<Root>(deps, {
      method: 'POST',
      path: `/providers/{public_id}/${action}`,
      surface: 'management',
      idempotent: true,
      handler: async ({ principal, params }) => {
        const view = await providers.setActive(principal.teamId, params.public_id ?? '', active);
        return { data: view, etag: etagOf(view) };
      },
    });
  }

  defineRoute<Root>(deps, {
    method: 'POST',
    path: '/providers/{public_id}/test',
    surface: 'management',
    idempotent: true,
    handler: async ({ principal, params }) => ({ data: await providers.test(principal.teamId, params.public_id ?? '') }),
  });
}
