// The mailbox-level reads of the Mailbox API: me, session (capabilities, limits, states, gated
// features), identity and identities, quotas and usage, and the granted-mailbox list. Capabilities
// say only what this server really does.
import { iso } from '../../core/clock.ts';
import { AppError, notFound } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { IdentityRow, MailboxRow, Repos } from '../../store/index.ts';
import type { ServiceContext } from '../context.ts';
import { mailboxView } from '../mailboxes.ts';
import { allStates, stateOf } from './states.ts';
import { KEYWORDS_PER_UPDATE_MAX, BODY_CHARS_DEFAULT } from './messages.ts';

export const SESSION_LIMITS = {
  list_limit_max: 100,
  changes_limit_max: 500,
  batch_ids_max: 100,
  message_body_chars_default: BODY_CHARS_DEFAULT,
  thread_body_chars_default: 25_000,
  body_chars_max: 1_000_000,
  inline_attachment_bytes_max: 5_000_000,
  attachment_upload_bytes_max: 7_500_000,
  outbound_raw_message_bytes_max: 26_214_400,
  keywords_per_update_max: KEYWORDS_PER_UPDATE_MAX,
} as const;

/** What this build implements; flipped on as the send and sync work lands. */
export const FEATURES = { send: true, changes: true, queryChanges: true, events: true } as const;

function identityView(r: IdentityRow) {
  return {
    id: r.id,
    name: r.name,
    email: r.email,
    reply_to: JSON.parse(r.reply_to) as unknown[],
    bcc: JSON.parse(r.bcc) as unknown[],
    text_signature: r.text_signature,
    html_signature: r.html_signature,
    may_delete: false,
  };
}

export class AccountService {
  private readonly ctx: ServiceContext;
  constructor(ctx: ServiceContext) {
    this.ctx = ctx;
  }

  /** The default identity made with a mailbox, inside its creation transaction. */
  async createDefaultIdentity(tx: Repos, mailbox: MailboxRow): Promise<void> {
    const now = iso(this.ctx.clock.now());
    await tx.identities.insert({
      id: newId('id'),
      mailbox_id: mailbox.id,
      name: mailbox.display_name ?? '',
      email: mailbox.email,
      reply_to: '[]',
      bcc: '[]',
      text_signature: '',
      html_signature: '',
      created_at: now,
      updated_at: now,
    });
  }

  async mailbox(mailboxId: string): Promise<MailboxRow> {
    const row = await this.ctx.store.mailboxes.get(mailboxId);
    if (!row) throw notFound('Mailbox');
    return row;
  }

  async me(mailboxId: string) {
    const row = await this.mailbox(mailboxId);
    return { ...mailboxView(row), quota_used_bytes: row.used_bytes };
  }

  async session(mailboxId: string) {
    const row = await this.mailbox(mailboxId);
    const f = FEATURES;
    return {
      mailbox: { id: row.id, email: row.email, display_name: row.display_name },
      states: await allStates(this.ctx.store, mailboxId),
      capabilities: {
        messages: { list: true, detail: true, raw_body: true, clean_content: true, batch_get: true, count: true, search_snippets: true, changes: f.changes, query_changes: f.queryChanges, update_fields: ['seen', 'flagged', 'keywords'], keywords: true, batch_update: true, delete: true, permanent_delete: true },
        threads: { list: true, detail: true, messages: true, clean_content: true, changes: f.changes },
        folders: { list: true, detail: true, create: true, update: true, delete: true, changes: f.changes, query_changes: f.queryChanges },
        submissions: { list: f.send, detail: f.send, changes: f.send && f.changes, send: f.send },
        identities: { list: true, changes: f.changes, create: false, update: true, delete: false },
        quotas: { list: true, usage: true, changes: f.changes, update: false },
        attachments: { upload: f.send, download: true, range_download: true, metadata: true, parsing: false, send_with_uploaded_blob: f.send },
        sync: { typed_changes: f.changes, types: f.changes ? ['messages', 'folders', 'threads', 'submissions', 'identities', 'quotas'] : [], query_changes: f.queryChanges ? ['messages', 'folders'] : [] },
      },
      limits: SESSION_LIMITS,
      gated: {
        identity_mutation: false,
        quota_mutation: true,
        vacation_response: true,
        filter_script_writes: true,
        events: !f.events,
        raw_protocol: true,
        attachment_parsing: true,
        message_copy: true,
        message_import: true,
        message_parse: true,
        blob_lookup: true,
        blob_copy: true,
      },
      endpoints: {
        mailbox: ['/mailbox/me', '/mailbox/session', '/mailbox/identity', '/mailbox/identities', '/mailbox/mailboxes'],
        messages: ['/mailbox/messages', '/mailbox/messages/count', '/mailbox/messages/search-snippets', '/mailbox/messages/{message_id}', '/mailbox/messages/{message_id}/body', '/mailbox/messages/{message_id}/content', '/mailbox/messages:batch-get', '/mailbox/messages:batch-update', '/mailbox/messages:batch-delete'],
        threads: ['/mailbox/threads', '/mailbox/threads/{thread_id}', '/mailbox/threads/{thread_id}/messages', '/mailbox/threads/{thread_id}/content'],
        folders: ['/mailbox/folders', '/mailbox/folders/{folder_id}'],
        submissions: f.send ? ['/mailbox/submissions', '/mailbox/submissions/{submission_id}', '/mailbox/messages/send'] : [],
        usage: ['/mailbox/quotas', '/mailbox/usage'],
        sync: f.changes ? ['/mailbox/changes', '/mailbox/messages/query-changes', '/mailbox/folders/changes', '/mailbox/folders/query-changes', '/mailbox/quotas/changes'] : [],
      },
    };
  }

  async identities(mailboxId: string) {
    return (await this.ctx.store.identities.listForMailbox(mailboxId)).map(identityView);
  }

  async identity(mailboxId: string) {
    const [first] = await this.ctx.store.identities.listForMailbox(mailboxId);
    if (!first) throw new AppError('service_unavailable', 'Mailbox identity is not provisioned');
    return identityView(first);
  }

  async identityState(mailboxId: string): Promise<string> {
    return stateOf(this.ctx.store, mailboxId, 'identity');
  }

  async patchIdentity(mailboxId: string, input: { name?: string | null; text_signature?: string | null; html_signature?: string | null }) {
    const [first] = await this.ctx.store.identities.listForMailbox(mailboxId);
    if (!first) throw new AppError('service_unavailable', 'Mailbox identity is not provisioned');
    const patch: { name?: string; text_signature?: string; html_signature?: string; updated_at: string } = { updated_at: iso(this.ctx.clock.now()) };
    if (input.name !== undefined) patch.name = (input.name ?? '').replace(/[\r\n]+/g, ' ').trim();
    if (input.text_signature !== undefined) patch.text_signature = input.text_signature ?? '';
    if (input.html_signature !== undefined) patch.html_signature = input.html_signature ?? '';
    await this.ctx.store.identities.update(first.id, mailboxId, patch);
    return this.identity(mailboxId);
  }

  /** One octets quota per mailbox (JMAP Quota, scope account, type Mail). */
  async quotas(mailboxId: string) {
    const row = await this.mailbox(mailboxId);
    const hard = row.quota_bytes ?? 0;
    return [
      {
        id: `quota_${row.id.slice(4)}`,
        name: `${row.email} storage`,
        description: 'Bytes of stored mail (raw message size) in this mailbox',
        resource_type: 'octets',
        scope: 'account',
        types: ['Mail'],
        used: row.used_bytes,
        hard_limit: hard,
        warn_limit: hard > 0 ? Math.floor(hard * 0.9) : null,
        soft_limit: null,
      },
    ];
  }

  async usage(mailboxId: string) {
    const quotas = await this.quotas(mailboxId);
    return {
      resources: quotas.map((q) => {
        const percent = q.hard_limit > 0 ? Math.round((q.used / q.hard_limit) * 10000) / 100 : null;
        const status = q.hard_limit <= 0 ? 'unknown' : q.used >= q.hard_limit ? 'hard_limit' : q.warn_limit !== null && q.used >= q.warn_limit ? 'warning' : 'ok';
        return { quota_id: q.id, name: q.name, resource_type: q.resource_type, scope: q.scope, types: q.types, used: q.used, hard_limit: q.hard_limit, warn_limit: q.warn_limit, soft_limit: q.soft_limit, percent_used: percent, limit_status: status };
      }),
      states: { quota_state: await stateOf(this.ctx.store, mailboxId, 'quota') },
    };
  }
}
