// Mailboxes and their keys: create (mailbox + first credential in one transaction), list, get,
// patch, suspend, resume, delete (the row stays as 'deleted'; a cleanup purges data, then frees the
// address), availability, and extra keys. Credentials are returned once and stored hashed.
import { iso } from '../core/clock.ts';
import { AppError, conflict, notFound } from '../core/errors.ts';
import { hashSecret, newId, newSecret } from '../core/ids.ts';
import { decodeCursor, pageOf, type Page } from '../core/cursor.ts';
import { QUOTA_DEFAULT, QUOTA_TIERS, RESERVED_LOCAL_PARTS } from '../config/limits.ts';
import { isValidEmail, normaliseEmail, splitAddress } from '../mime/addresses.ts';
import { isUniqueViolation, type MailboxRow, type MailboxViewRow, type Repos } from '../store/index.ts';
import type { ServiceContext } from './context.ts';
import type { PrefetchedMailbox } from './credentials.ts';
import { keyFragments } from './teams.ts';

export interface SendScope {
  type: 'all' | 'providers' | 'group';
  provider_public_ids?: string[];
  group_public_ids?: string[];
}

export interface MailboxView {
  id: string;
  email: string;
  display_name: string | null;
  quota_bytes: number | null;
  send_scope: SendScope;
  status: 'active' | 'suspended' | 'deleted';
  created_at: string;
}

export interface CredentialView {
  public_id: string;
  secret: string;
  key_prefix: string;
  key_suffix: string;
  username: string;
  server: string;
  imap_port: number;
  smtp_port: number;
}

export type AvailabilityReason = 'available' | 'invalid_email' | 'domain_not_available' | 'taken' | 'reserved' | 'cleanup_pending';

export interface CreateMailboxInput {
  email: string;
  display_name?: string;
  quota_bytes?: number;
  send_scope?: SendScope;
}

export interface PatchMailboxInput {
  display_name?: string | null;
  quota_bytes?: number;
  send_scope?: SendScope;
}

export function mailboxView(row: MailboxViewRow): MailboxView {
  return {
    id: row.id,
    email: row.email,
    display_name: row.display_name,
    quota_bytes: row.quota_bytes,
    send_scope: JSON.parse(row.send_scope) as SendScope,
    status: row.status,
    created_at: row.created_at,
  };
}

export interface MailboxHooks {
  /** Called after a delete commits so the data purge can start (the maintenance worker). */
  onDeleted?: () => void;
  /** Purges a deleted mailbox's stored mail (messages, threads, folders, blobs no one else uses). */
  purgeData?: (mailboxId: string) => Promise<void>;
  /** Creates what every mailbox starts with (folders, identity) inside the creation transaction. */
  provision?: (tx: Repos, mailbox: MailboxRow) => Promise<void>;
}

export class MailboxesService {
  private readonly ctx: ServiceContext;
  private readonly hooks: MailboxHooks;
  constructor(ctx: ServiceContext, hooks: MailboxHooks = {}) {
    this.ctx = ctx;
    this.hooks = hooks;
  }

  private now(): string {
    return iso(this.ctx.clock.now());
  }

  private validateQuota(quota: number | undefined, field = 'quota_bytes'): void {
    if (quota !== undefined && !(QUOTA_TIERS as readonly number[]).includes(quota)) {
      throw new AppError('validation_error', `quota_bytes must be one of ${QUOTA_TIERS.join(', ')}`, {
        param: field,
        errors: [{ field, code: 'invalid_enum_value', message: `Allowed values: ${QUOTA_TIERS.join(', ')}` }],
      });
    }
  }

  /**
   * Send scopes reference sending accounts (providers) and delivery groups of the same team.
   * Mailmux has no delivery groups, so a named group is unknown (422).
   */
  private async validateSendScope(teamId: string, scope: SendScope | undefined): Promise<SendScope> {
    if (scope === undefined) return { type: 'all' };
    const providers = scope.provider_public_ids ?? [];
    const groups = scope.group_public_ids ?? [];
    const fail = (field: string, message: string): never => {
      throw new AppError('validation_error', message, { param: field, errors: [{ field, code: 'custom', message }] });
    };
    if (scope.type === 'all') {
      if (providers.length > 0 || groups.length > 0) fail('send_scope.type', 'send_scope type all takes no provider or group ids');
      return { type: 'all' };
    }
    if (scope.type === 'providers') {
      if (providers.length === 0) fail('send_scope.provider_public_ids', 'send_scope type providers needs provider_public_ids');
      if (groups.length > 0) fail('send_scope.group_public_ids', 'group_public_ids only go with type group');
      for (const [i, id] of providers.entries()) {
        const row = await this.ctx.store.providers.get(id);
        if (!row || row.team_id !== teamId) fail(`send_scope.provider_public_ids.${i}`, `Provider ${id} not found in this team`);
      }
      return { type: 'providers', provider_public_ids: [...new Set(providers)] };
    }
    if (groups.length === 0) fail('send_scope.group_public_ids', 'send_scope type group needs group_public_ids');
    if (providers.length > 0) fail('send_scope.provider_public_ids', 'provider_public_ids only go with type providers');
    return fail('send_scope.group_public_ids.0', `Delivery group ${groups[0]} not found in this team`);
  }

  /** Why an address can or cannot be reserved by this team. */
  async availability(teamId: string, rawEmail: string): Promise<{ email: string; reason: AvailabilityReason; domainId?: string }> {
    const email = normaliseEmail(rawEmail);
    const parts = splitAddress(email);
    if (!parts || !isValidEmail(email) || parts.local.includes('+')) return { email, reason: 'invalid_email' };
    const domain = await this.ctx.store.domains.byName(parts.domain);
    const usable =
      domain !== undefined &&
      domain.deleting === 0 &&
      domain.mode === 'send_receive' &&
      domain.verification_status === 'verified' &&
      (domain.is_default === 1 || domain.team_id === teamId);
    if (!domain || !usable) return { email, reason: 'domain_not_available' };
    if (domain.is_default === 1 && (RESERVED_LOCAL_PARTS as readonly string[]).includes(parts.local)) return { email, reason: 'reserved', domainId: domain.id };
    if (await this.ctx.store.mailboxes.liveByEmail(email)) return { email, reason: 'taken', domainId: domain.id };
    if (await this.ctx.store.mailboxes.pendingCleanupByEmail(email)) return { email, reason: 'cleanup_pending', domainId: domain.id };
    return { email, reason: 'available', domainId: domain.id };
  }

  private credentialView(email: string, id: string, secret: string): CredentialView {
    const { keyPrefix, keySuffix } = keyFragments(secret);
    return {
      public_id: id,
      secret,
      key_prefix: keyPrefix,
      key_suffix: keySuffix,
      username: email,
      server: this.ctx.config.hostname,
      imap_port: this.ctx.config.imapsPort,
      smtp_port: this.ctx.config.submissionPort,
    };
  }

  private async insertKey(tx: Repos, mailbox: MailboxRow, name: string | null): Promise<CredentialView> {
    const limit = this.ctx.config.teamLimits.keys;
    if ((await tx.keys.countActiveMailboxKeys(mailbox.team_id)) >= limit) {
      throw new AppError('limit_exceeded', `A team may hold at most ${limit} active mailbox keys`);
    }
    const secret = newSecret('mailbox');
    const id = newId('smx');
    const { keyPrefix, keySuffix } = keyFragments(secret);
    await tx.keys.insert({
      id,
      team_id: mailbox.team_id,
      kind: 'mailbox',
      mailbox_id: mailbox.id,
      name,
      secret_hash: hashSecret(secret),
      key_prefix: keyPrefix,
      key_suffix: keySuffix,
      created_at: this.now(),
      revoked_at: null,
    });
    return this.credentialView(mailbox.email, id, secret);
  }

  async create(teamId: string, input: CreateMailboxInput): Promise<{ mailbox: MailboxView; credential: CredentialView | null; warning: string | null }> {
    this.validateQuota(input.quota_bytes);
    const sendScope = await this.validateSendScope(teamId, input.send_scope);
    const check = await this.availability(teamId, input.email);
    const reject422 = (message: string): never => {
      throw new AppError('validation_error', message, { param: 'email', errors: [{ field: 'email', code: 'custom', message }] });
    };
    switch (check.reason) {
      case 'invalid_email':
        reject422('email is not a valid mailbox address (plus tags are not allowed in mailbox names)');
        break;
      case 'domain_not_available':
        reject422('The domain is not a verified send_receive domain of this team');
        break;
      case 'reserved':
        reject422('This address is reserved');
        break;
      case 'taken':
        throw conflict('Email address is already in use');
      case 'cleanup_pending':
        throw conflict('A deleted mailbox with this address is still being cleaned up; try again shortly');
      case 'available':
        break;
    }
    const now = this.now();
    const row: MailboxRow = {
      id: newId('mbx'),
      team_id: teamId,
      domain_id: check.domainId ?? '',
      email: check.email,
      display_name: input.display_name ?? null,
      quota_bytes: input.quota_bytes ?? QUOTA_DEFAULT,
      used_bytes: 0,
      send_scope: JSON.stringify(sendScope),
      status: 'active',
      cleanup_pending: 0,
      created_at: now,
      updated_at: now,
      deleted_at: null,
    };
    const limit = this.ctx.config.teamLimits.mailboxes;
    try {
      const credential = await this.ctx.store.transaction(async (tx) => {
        if ((await tx.mailboxes.countLiveForTeam(teamId)) >= limit) throw new AppError('limit_exceeded', `A team may hold at most ${limit} mailboxes`);
        await tx.mailboxes.insert(row);
        await this.hooks.provision?.(tx, row);
        return this.insertKey(tx, row, 'initial credential');
      });
      this.ctx.log.info({ event: 'mailbox.created', mailbox_id: row.id, team_id: teamId });
      return { mailbox: mailboxView(row), credential, warning: null };
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict('Email address is already in use');
      throw err;
    }
  }

  async list(teamId: string, limit: number, cursor: string | undefined, includeDeleted: boolean): Promise<Page<MailboxView>> {
    const rows = await this.ctx.store.mailboxes.listForTeam(teamId, { limit, after: decodeCursor(cursor), includeDeleted });
    const page = pageOf(rows, limit, (r) => ({ v: r.created_at, id: r.id }));
    return { ...page, items: page.items.map(mailboxView) };
  }

  async getRow(teamId: string, id: string): Promise<MailboxRow> {
    const row = await this.ctx.store.mailboxes.get(id);
    if (!row || row.team_id !== teamId) throw notFound('Mailbox');
    return row;
  }

  /** `prefetched`: the row already read with the request's credential (same checks as a fresh read). */
  async get(teamId: string, id: string, prefetched?: PrefetchedMailbox): Promise<MailboxView> {
    if (prefetched) return mailboxView(this.prefetchedRow(teamId, id, prefetched));
    return mailboxView(await this.getRow(teamId, id));
  }

  /** The row read with the request's credential, if it is mailbox `id` of this team (get's checks, synchronously); else 404. */
  prefetchedRow(teamId: string, id: string, prefetched: PrefetchedMailbox): MailboxViewRow {
    const row = prefetched.row;
    if (!row || row.id !== id || row.team_id !== teamId) throw notFound('Mailbox');
    return row;
  }

  async patch(teamId: string, id: string, input: PatchMailboxInput): Promise<MailboxView> {
    const row = await this.getRow(teamId, id);
    if (row.status === 'deleted') throw conflict('Mailbox is deleted');
    this.validateQuota(input.quota_bytes);
    const patch: Partial<MailboxRow> = { updated_at: this.now() };
    if (input.send_scope !== undefined) patch.send_scope = JSON.stringify(await this.validateSendScope(teamId, input.send_scope));
    if (input.display_name !== undefined) patch.display_name = input.display_name;
    if (input.quota_bytes !== undefined) {
      if (input.quota_bytes < row.used_bytes) {
        throw new AppError('validation_error', 'quota_bytes is below the bytes this mailbox already stores', {
          param: 'quota_bytes',
          errors: [{ field: 'quota_bytes', code: 'too_small', message: `Mailbox already stores ${row.used_bytes} bytes` }],
        });
      }
      patch.quota_bytes = input.quota_bytes;
    }
    await this.ctx.store.mailboxes.update(id, patch);
    return this.get(teamId, id);
  }

  private async setStatus(teamId: string, id: string, status: 'active' | 'suspended'): Promise<MailboxView> {
    const row = await this.getRow(teamId, id);
    if (row.status === 'deleted') throw conflict('Mailbox is deleted');
    if (row.status !== status) await this.ctx.store.mailboxes.update(id, { status, updated_at: this.now() });
    this.ctx.log.info({ event: status === 'active' ? 'mailbox.resumed' : 'mailbox.suspended', mailbox_id: id });
    return this.get(teamId, id);
  }

  suspend(teamId: string, id: string): Promise<MailboxView> {
    return this.setStatus(teamId, id, 'suspended');
  }

  resume(teamId: string, id: string): Promise<MailboxView> {
    return this.setStatus(teamId, id, 'active');
  }

  /** Marks the mailbox deleted and revokes its keys at once; its data is purged by runCleanups(). */
  async delete(teamId: string, id: string): Promise<void> {
    const row = await this.getRow(teamId, id);
    if (row.status === 'deleted') return;
    const now = this.now();
    await this.ctx.store.transaction(async (tx) => {
      await tx.mailboxes.update(id, { status: 'deleted', deleted_at: now, updated_at: now, cleanup_pending: 1 });
      await tx.keys.revokeAllForMailbox(id, now);
      await tx.filters.delete('mailbox', id);
    });
    this.ctx.log.info({ event: 'mailbox.deleted', mailbox_id: id });
    this.hooks.onDeleted?.();
  }

  /** Purges the data of every deleted mailbox still pending cleanup; returns how many were done. */
  async runCleanups(): Promise<number> {
    const pending = await this.ctx.store.mailboxes.listPendingCleanup();
    for (const row of pending) {
      await this.hooks.purgeData?.(row.id);
      await this.ctx.store.mailboxes.update(row.id, { cleanup_pending: 0, used_bytes: 0, updated_at: this.now() });
      this.ctx.log.info({ event: 'mailbox.cleaned', mailbox_id: row.id });
    }
    return pending.length;
  }

  async createKey(teamId: string, id: string, appName: string): Promise<CredentialView> {
    const row = await this.getRow(teamId, id);
    if (row.status !== 'active') {
      throw new AppError('validation_error', `Mailbox is ${row.status}; keys can be created only for active mailboxes`);
    }
    return this.ctx.store.transaction((tx) => this.insertKey(tx, row, appName));
  }

  /** Revoking an already revoked key succeeds again (idempotent). */
  async revokeKey(teamId: string, mailboxId: string, keyId: string): Promise<void> {
    await this.getRow(teamId, mailboxId);
    const key = await this.ctx.store.keys.get(keyId);
    if (!key || key.kind !== 'mailbox' || key.mailbox_id !== mailboxId) throw notFound('Key');
    await this.ctx.store.keys.revoke(keyId, this.now());
    this.ctx.log.info({ event: 'key.revoked', mailbox_id: mailboxId, key_id: keyId });
  }
}
