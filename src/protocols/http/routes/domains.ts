// Domains (spec tag Domains): list, create, get, upgrade, delete, verify, zone file.
import { AppError } from '../../../core/errors.ts';
import type { Principal } from '../../../services/credentials.ts';
import { etagOf } from '../../../services/etag.ts';
import { defineRoute, limitOf, type RouteDeps } from '../route.ts';

type Root = Extract<Principal, { kind: 'root' }>;

export function registerDomainRoutes(deps: RouteDeps): void {
  const domains = deps.services.domains;

  defineRoute<Root>(deps, {
    method: 'GET',
    path: '/domains',
    surface: 'management',
    handler: async ({ principal, query }) => {
      const page = await domains.list(principal.teamId, limitOf(query), query.cursor);
      return { data: page.items, pagination: { has_more: page.hasMore, ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}) } };
    },
  });

  defineRoute<Root>(deps, {
    method: 'POST',
    path: '/domains',
    surface: 'management',
    idempotent: true,
    handler: async ({ principal, body }) => {
      const view = await domains.create(principal.teamId, body);
      return { status: 201, data: view, etag: etagOf(view), headers: { Location: `/api/v1/domains/${view.id}` } };
    },
  });

  defineRoute<Root>(deps, {
    method: 'GET',
    path: '/domains/{public_id}',
    surface: 'management',
    handler: async ({ principal, params }) => {
      const view = await domains.get(principal.teamId, params.public_id ?? '');
      return { data: view, etag: etagOf(view) };
    },
  });

  defineRoute<Root>(deps, {
    method: 'PATCH',
    path: '/domains/{public_id}',
    surface: 'management',
    precheck: (body) => {
      if (body && typeof body === 'object' && (body as { mode?: unknown }).mode === 'send_only') {
        throw new AppError('validation_error', 'A domain cannot be downgraded to send_only', {
          param: 'mode',
          errors: [{ field: 'mode', code: 'invalid_enum_value', message: 'Only the upgrade to send_receive is supported' }],
        });
      }
    },
    handler: async ({ principal, params, checkIfMatch }) => {
      const current = await domains.get(principal.teamId, params.public_id ?? '');
      checkIfMatch(etagOf(current));
      const view = await domains.upgrade(principal.teamId, current.id);
      return { data: view, etag: etagOf(view) };
    },
  });

  defineRoute<Root>(deps, {
    method: 'DELETE',
    path: '/domains/{public_id}',
    surface: 'management',
    handler: async ({ principal, params }) => {
      const id = params.public_id ?? '';
      await domains.delete(principal.teamId, id);
      return { data: { deleted: true, id } };
    },
  });

  defineRoute<Root>(deps, {
    method: 'POST',
    path: '/domains/{public_id}/verify',
    surface: 'management',
    handler: async ({ principal, params }) => ({ data: await domains.verify(principal.teamId, params.public_id ?? '') }),
  });

  defineRoute<Root>(deps, {
    method: 'GET',
    path: '/domains/{public_id}/zone-file',
    surface: 'management',
    handler: async ({ principal, params }) => {
      const view = await domains.get(principal.teamId, params.public_id ?? '');
      return {
        raw: { contentType: 'text/plain; charset=utf-8', body: domains.zoneFile(view) },
        headers: { 'Content-Disposition': `attachment; filename="${view.domain}.zone"` },
      };
    },
  });
}
