// Sender filters (spec tags Domain Filters, Mailbox Filters): read and atomically replace.
import { AppError } from '../../../core/errors.ts';
import { FILTER_RULES_MAX } from '../../../config/limits.ts';
import type { Principal } from '../../../services/credentials.ts';
import { etagOf } from '../../../services/etag.ts';
import { conflict } from '../../../core/errors.ts';
import { defineRoute, type RouteDeps } from '../route.ts';

type Root = Extract<Principal, { kind: 'root' }>;

/** The spec wants a rule set over the cap as 422 (a semantic limit), before schema validation says 400. */
function ruleCap(body: unknown): void {
  const rules = (body as { rules?: unknown } | null)?.rules;
  if (Array.isArray(rules) && rules.length > FILTER_RULES_MAX) {
    throw new AppError('validation_error', `At most ${FILTER_RULES_MAX} rules are allowed`, {
      param: 'rules',
      errors: [{ field: 'rules', code: 'too_big', message: `At most ${FILTER_RULES_MAX} rules` }],
    });
  }
}

export function registerFilterRoutes(deps: RouteDeps): void {
  const { filters, domains, mailboxes } = deps.services;

  defineRoute<Root>(deps, {
    method: 'GET',
    path: '/domains/{public_id}/filters',
    surface: 'management',
    handler: async ({ principal, params }) => {
      const domain = await domains.getRow(principal.teamId, params.public_id ?? '');
      if (domain.mode !== 'send_receive') throw conflict('Domain filters need a send_receive domain');
      const state = await filters.domainFilter(domain.id);
      return { data: state, etag: etagOf(state) };
    },
  });

  defineRoute<Root>(deps, {
    method: 'PUT',
    path: '/domains/{public_id}/filters',
    surface: 'management',
    precheck: ruleCap,
    handler: async ({ principal, params, body, checkIfMatch }) => {
      const domain = await domains.getRow(principal.teamId, params.public_id ?? '');
      checkIfMatch(etagOf(await filters.domainFilter(domain.id)));
      const state = await filters.setDomainFilter(principal.teamId, domain.id, body);
      return { data: state, etag: etagOf(state) };
    },
  });

  defineRoute<Root>(deps, {
    method: 'GET',
    path: '/mailboxes/{public_id}/filters',
    surface: 'management',
    handler: async ({ principal, params }) => {
      const mailbox = await mailboxes.getRow(principal.teamId, params.public_id ?? '');
      const state = await filters.mailboxFilter(mailbox.id);
      return { data: state, etag: etagOf(state) };
    },
  });

  defineRoute<Root>(deps, {
    method: 'PUT',
    path: '/mailboxes/{public_id}/filters',
    surface: 'management',
    precheck: ruleCap,
    handler: async ({ principal, params, body, checkIfMatch }) => {
      const mailbox = await mailboxes.getRow(principal.teamId, params.public_id ?? '');
      if (mailbox.status === 'deleted') throw conflict('Mailbox is deleted');
      checkIfMatch(etagOf(await filters.mailboxFilter(mailbox.id)));
      const state = await filters.setMailboxFilter(principal.teamId, mailbox.id, body);
      return { data: state, etag: etagOf(state) };
    },
  });
}
