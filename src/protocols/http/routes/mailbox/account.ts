// Mailbox API: me, session, identity, identities, granted mailboxes, quotas, usage.
import { etagOf } from '../../../../services/etag.ts';
import { defineRoute, limitOf, type RouteDeps } from '../../route.ts';
import type { MailboxPrincipal } from './common.ts';

export function registerAccountRoutes(deps: RouteDeps): void {
  const account = deps.services.account;

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/me',
    surface: 'mailbox',
    handler: async ({ principal }) => {
      const me = await account.me(principal.mailboxId);
      return { data: me, etag: etagOf(me) };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/session',
    surface: 'mailbox',
    handler: async ({ principal }) => {
      const session = await account.session(principal.mailboxId);
      return { data: session, etag: etagOf(session) };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/mailboxes',
    surface: 'mailbox',
    handler: async ({ principal, query }) => {
      const q = typeof query.q === 'string' ? query.q.toLowerCase() : '';
      const mine = [{ id: principal.mailboxId, email: principal.email }];
      const data = q ? mine.filter((m) => m.id.toLowerCase().includes(q) || m.email.includes(q)) : mine;
      return { data: data.slice(0, limitOf(query)), pagination: { has_more: false } };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/identity',
    surface: 'mailbox',
    handler: async ({ principal }) => ({ data: await account.identity(principal.mailboxId) }),
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'PATCH',
    path: '/mailbox/identity',
    surface: 'mailbox',
    handler: async ({ principal, body }) => ({ data: await account.patchIdentity(principal.mailboxId, body) }),
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/identities',
    surface: 'mailbox',
    handler: async ({ principal, query }) => {
      const all = await account.identities(principal.mailboxId);
      return { data: all.slice(0, limitOf(query)), pagination: { has_more: all.length > limitOf(query) }, meta: { identity_state: await account.identityState(principal.mailboxId) } };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/quotas',
    surface: 'mailbox',
    handler: async ({ principal, query }) => {
      let quotas = await account.quotas(principal.mailboxId);
      if (typeof query.name === 'string') quotas = quotas.filter((q) => q.name.toLowerCase().includes(String(query.name).toLowerCase()));
      if (typeof query.scope === 'string') quotas = quotas.filter((q) => q.scope === query.scope);
      if (typeof query.resource_type === 'string') quotas = quotas.filter((q) => q.resource_type === query.resource_type);
      if (typeof query.type === 'string') quotas = quotas.filter((q) => q.types.includes(String(query.type)));
      const dir = query.sort_direction === 'desc' ? -1 : 1;
      const by = query.sort_by === 'used' ? 'used' : 'name';
      quotas.sort((a, b) => (a[by] < b[by] ? -dir : a[by] > b[by] ? dir : 0));
      return { data: quotas.slice(0, limitOf(query)), pagination: { has_more: quotas.length > limitOf(query) } };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/mailbox/usage',
    surface: 'mailbox',
    handler: async ({ principal }) => {
      const usage = await account.usage(principal.mailboxId);
      return { data: usage, etag: etagOf(usage) };
    },
  });
}
