// Mailboxes (spec tag Mailboxes): list, create, get, patch, delete, suspend, resume, availability,
// and mailbox keys.
import type { Principal } from '../../../services/credentials.ts';
import { etagOf, etagOfJson } from '../../../services/etag.ts';
import { mailboxView } from '../../../services/mailboxes.ts';
import type { MailboxViewRow } from '../../../store/index.ts';
import { defineRoute, limitOf, type RouteDeps } from '../route.ts';

type Root = Extract<Principal, { kind: 'root' }>;

const CREDENTIAL_REPLAY_WARNING = 'Replayed request: the credential was shown once, in the original response. Create a new key with POST /mailboxes/{id}/keys if it was lost.';

interface Rendering {
  json: string;
  etag: string;
}

/**
 * A mailbox row's view as JSON and its ETag (parsing send_scope and hashing cost more than the
 * rest of the handler). Rows the store hands out again while the database is unchanged are the
 * same frozen object (SQLite, store/fast-read.ts), so their rendering is kept with them: a changed
 * mailbox is a new row, rendered afresh. Rows read afresh every time (PostgreSQL) are compared,
 * value by value in every column the view uses, with the row last rendered for that mailbox id:
 * the rendering is reused only when all are equal, so nothing stale is served. The row itself is
 * still read, and checked, on every request; only its rendering is reused.
 */
const renderings = new WeakMap<MailboxViewRow, Rendering>();
const lastRendered = new Map<string, { row: MailboxViewRow; rendering: Rendering }>();
/** Mailboxes whose last rendering is kept at most; then all are dropped. */
const LAST_RENDERED_MAX = 1000;

/** Every column of a MailboxViewRow, the only columns mailboxView can read (the compiler checks the list is complete). */
const VIEW_COLUMNS = Object.keys({
  id: true,
  team_id: true,
  email: true,
  display_name: true,
  quota_bytes: true,
  send_scope: true,
  status: true,
  created_at: true,
} satisfies Record<keyof MailboxViewRow, true>) as (keyof MailboxViewRow)[];

function sameView(a: MailboxViewRow, b: MailboxViewRow): boolean {
  for (const c of VIEW_COLUMNS) if (a[c] !== b[c]) return false;
  return true;
}

function render(row: MailboxViewRow): Rendering {
  const json = JSON.stringify(mailboxView(row));
  return { json, etag: etagOfJson(json) };
}

function rendered(row: MailboxViewRow): Rendering {
  if (Object.isFrozen(row)) {
    let r = renderings.get(row);
    if (r === undefined) {
      r = render(row);
      renderings.set(row, r);
    }
    return r;
  }
  const last = lastRendered.get(row.id);
  if (last !== undefined && sameView(last.row, row)) return last.rendering;
  const rendering = render(row);
  if (last === undefined && lastRendered.size >= LAST_RENDERED_MAX) lastRendered.clear();
  // A copy: the caller's row object is not held.
  lastRendered.set(row.id, { row: { ...row }, rendering });
  return rendering;
}

export function registerMailboxRoutes(deps: RouteDeps): void {
  const mailboxes = deps.services.mailboxes;

  defineRoute<Root>(deps, {
    method: 'GET',
    path: '/mailboxes',
    surface: 'management',
    handler: async ({ principal, query }) => {
      const page = await mailboxes.list(principal.teamId, limitOf(query), query.cursor, query.include_deleted === 'true');
      return { data: page.items, pagination: { has_more: page.hasMore, ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}) } };
    },
  });

  defineRoute<Root>(deps, {
    method: 'POST',
    path: '/mailboxes',
    surface: 'management',
    idempotent: true,
    redactForReplay: (data) => ({ ...data, credential: null, warning: CREDENTIAL_REPLAY_WARNING }),
    handler: async ({ principal, body }) => {
      const result = await mailboxes.create(principal.teamId, body);
      return { status: 201, data: result, headers: { Location: `/api/v1/mailboxes/${result.mailbox.id}` } };
    },
  });

  defineRoute<Root>(deps, {
    method: 'GET',
    path: '/mailboxes/availability',
    surface: 'management',
    handler: async ({ principal, query }) => {
      const r = await mailboxes.availability(principal.teamId, String(query.email));
      return { data: { email: r.email, available: r.reason === 'available', reason: r.reason } };
    },
  });

  defineRoute<Root>(deps, {
    method: 'GET',
    path: '/mailboxes/{public_id}',
    surface: 'management',
    prefetchMailbox: 'public_id',
    // Synchronous when the mailbox came with the credential (always, on SQLite's fast read).
    handler: ({ principal, params, prefetchedMailbox }) => {
      const id = params.public_id ?? '';
      if (!prefetchedMailbox) return mailboxes.get(principal.teamId, id).then((view) => ({ data: view, etag: etagOf(view) }));
      const { json, etag } = rendered(mailboxes.prefetchedRow(principal.teamId, id, prefetchedMailbox));
      return { dataJson: json, etag };
    },
  });

  defineRoute<Root>(deps, {
    method: 'PATCH',
    path: '/mailboxes/{public_id}',
    surface: 'management',
    handler: async ({ principal, params, body, checkIfMatch }) => {
      const current = await mailboxes.get(principal.teamId, params.public_id ?? '');
      checkIfMatch(etagOf(current));
      const view = await mailboxes.patch(principal.teamId, current.id, body);
      return { data: view, etag: etagOf(view) };
    },
  });

  defineRoute<Root>(deps, {
    method: 'DELETE',
    path: '/mailboxes/{public_id}',
    surface: 'management',
    handler: async ({ principal, params }) => {
      const id = params.public_id ?? '';
      await mailboxes.delete(principal.teamId, id);
      return { data: { deleted: true, id } };
    },
  });

  for (const action of ['suspend', 'resume'] as const) {
    defineRoute<Root>(deps, {
      method: 'POST',
      path: `/mailboxes/{public_id}/${action}`,
      surface: 'management',
      idempotent: true,
      handler: async ({ principal, params }) => {
        const view = await mailboxes[action](principal.teamId, params.public_id ?? '');
        return { data: view, etag: etagOf(view) };
      },
    });
  }

  defineRoute<Root>(deps, {
    method: 'POST',
    path: '/mailboxes/{public_id}/keys',
    surface: 'management',
    idempotent: true,
    redactForReplay: () => ({ credential: null }),
    handler: async ({ principal, params, body }) => {
      const id = params.public_id ?? '';
      const credential = await mailboxes.createKey(principal.teamId, id, body.app_name);
      return { status: 201, data: { credential }, headers: { Location: `/api/v1/mailboxes/${id}/keys/${credential.public_id}` } };
    },
  });

  defineRoute<Root>(deps, {
    method: 'DELETE',
    path: '/mailboxes/{public_id}/keys/{key_id}',
    surface: 'management',
    handler: async ({ principal, params }) => {
      await mailboxes.revokeKey(principal.teamId, params.public_id ?? '', params.key_id ?? '');
      return { data: { deleted: true, id: params.key_id } };
    },
  });
}
