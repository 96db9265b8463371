// Teams and their API keys (root keys for a team, mailbox keys for one mailbox).
import { sql } from 'kysely';
import type { RepoContext } from './common.ts';
import { readFirst, readFirstNow, type MaybePromise, type PointQuery } from './cached-read.ts';
import type { ApiKeysTable, MailboxesTable, TeamsTable } from '../schema.ts';

export type TeamRow = TeamsTable;
export type ApiKeyRow = ApiKeysTable;
/**
 * What authentication reads of a key: the columns its checks use (services/credentials.ts), and
 * its mailbox's status and address. Only these are read on every request: each column more is
 * parsed and copied per request (PostgreSQL hands out a new row object each time).
 */
export type AuthKeyRow = Pick<ApiKeyRow, (typeof AUTH_KEY_COLUMNS)[number]> & { mailbox_status: MailboxesTable['status'] | null; mailbox_email: string | null };
const AUTH_KEY_COLUMNS = ['id', 'team_id', 'kind', 'mailbox_id', 'secret_hash', 'revoked_at'] as const satisfies readonly (keyof ApiKeyRow)[];
/** The mailbox columns a mailbox's view and its team check use (services/mailboxes.ts mailboxView). */
const MAILBOX_VIEW_COLUMNS = ['id', 'team_id', 'email', 'display_name', 'quota_bytes', 'send_scope', 'status', 'created_at'] as const satisfies readonly (keyof MailboxesTable)[];
export type MailboxViewRow = Pick<MailboxesTable, (typeof MAILBOX_VIEW_COLUMNS)[number]>;
type Nullable<T> = { [K in keyof T]: T[K] | null };
/** The mailbox columns of forAuthenticationWithMailbox, prefixed (null when no mailbox matched). */
type TargetColumns = { [K in keyof MailboxViewRow as `target_${K}`]: MailboxViewRow[K] | null };
export interface KeyWithMailbox {
  key: AuthKeyRow;
  mailbox: MailboxViewRow | undefined;
}

export class TeamsRepo {
  private readonly ctx: RepoContext;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
  }

  async insert(row: TeamRow): Promise<void> {
    await this.ctx.db.insertInto('teams').values(row).execute();
  }

  async first(): Promise<TeamRow | undefined> {
    return this.ctx.db.selectFrom('teams').selectAll().orderBy('created_at', 'asc').orderBy('id', 'asc').limit(1).executeTakeFirst();
  }

  async get(id: string): Promise<TeamRow | undefined> {
    return this.ctx.db.selectFrom('teams').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async count(): Promise<number> {
    const r = await this.ctx.db.selectFrom('teams').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(r.n);
  }
}

export class KeysRepo {
  private readonly ctx: RepoContext;
  constructor(ctx: RepoContext) {
    this.ctx = ctx;
  }

  async insert(row: ApiKeyRow): Promise<void> {
    await this.ctx.db.insertInto('api_keys').values(row).execute();
  }

  /** Every authenticated request starts here: a cached-shape point read. */
  async byHash(secretHash: string): Promise<ApiKeyRow | undefined> {
    return readFirst(this.ctx, 'api_keys_by_hash', (db) => db.selectFrom('api_keys').selectAll().where('secret_hash', '=', secretHash), [secretHash]);
  }

  /**
   * What authentication needs in one read: the key and, for a mailbox key, its mailbox's status
   * and address (null when the mailbox row is gone). The row may be shared and frozen: read only.
   * Synchronous when the fast path answers at once (SQLite outside a transaction). `sameTurn`: see
   * readFirstNow.
   */
  forAuthentication(secretHash: string, sameTurn = false): MaybePromise<AuthKeyRow | undefined> {
    return readFirstNow(
      this.ctx,
      'api_keys_for_authentication',
      (db) =>
        db
          .selectFrom('api_keys')
          .leftJoin('mailboxes', 'mailboxes.id', 'api_keys.mailbox_id')
          .select(AUTH_KEY_COLUMNS.map((c) => `api_keys.${c}` as const))
          .select(['mailboxes.status as mailbox_status', 'mailboxes.email as mailbox_email'])
          .where('api_keys.secret_hash', '=', secretHash),
      [secretHash],
      true,
      sameTurn,
    );
  }

  /**
   * forAuthentication and the mailbox `mailboxId` in one read (one round trip on PostgreSQL): for
   * the requests that name a mailbox (GET /mailboxes/{id}). undefined when no key has this hash.
   */
  forAuthenticationWithMailbox(secretHash: string, mailboxId: string, sameTurn = false): MaybePromise<KeyWithMailbox | undefined> {
    const row = readFirstNow<AuthKeyRow & TargetColumns>(
      this.ctx,
      'api_keys_for_authentication_with_mailbox',
      (db) =>
        db
          .selectFrom('api_keys')
          .leftJoin('mailboxes', 'mailboxes.id', 'api_keys.mailbox_id')
          .leftJoin('mailboxes as target', (join) => join.on('target.id', '=', mailboxId))
          .select(AUTH_KEY_COLUMNS.map((c) => `api_keys.${c}` as const))
          .select(['mailboxes.status as mailbox_status', 'mailboxes.email as mailbox_email'])
          .select(MAILBOX_VIEW_COLUMNS.map((c) => sql.ref(`target.${c}`).as(`target_${c}`)))
          .where('api_keys.secret_hash', '=', secretHash) as unknown as PointQuery<AuthKeyRow & TargetColumns>,
      [mailboxId, secretHash],
      true,
      sameTurn,
    );
    if (row instanceof Promise) return row.then(splitKeyWithMailbox);
    if (row === undefined) return undefined;
    // A kept row (frozen, handed out again while the database is unchanged) is split once.
    const known = splits.get(row);
    if (known !== undefined) return known;
    if (!Object.isFrozen(row)) return splitKeyWithMailbox(row);
    const s = splitKeyWithMailbox(row)!;
    const split = Object.freeze({ key: Object.freeze(s.key), mailbox: s.mailbox && Object.freeze(s.mailbox) });
    splits.set(row, split);
    return split;
  }

  async get(id: string): Promise<ApiKeyRow | undefined> {
    return this.ctx.db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async listRoot(teamId?: string): Promise<ApiKeyRow[]> {
    let q = this.ctx.db.selectFrom('api_keys').selectAll().where('kind', '=', 'root').orderBy('created_at', 'asc');
    if (teamId !== undefined) q = q.where('team_id', '=', teamId);
    return q.execute();
  }

  async countActiveMailboxKeys(teamId: string): Promise<number> {
    const r = await this.ctx.db
      .selectFrom('api_keys')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('team_id', '=', teamId)
      .where('kind', '=', 'mailbox')
      .where('revoked_at', 'is', null)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async revoke(id: string, at: string): Promise<void> {
    await this.ctx.db.updateTable('api_keys').set({ revoked_at: at }).where('id', '=', id).where('revoked_at', 'is', null).execute();
  }

  /** Of the given mailbox keys, those that still work: not revoked, and their mailbox active. */
  async liveMailboxKeys(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.ctx.db
      .selectFrom('api_keys')
      .innerJoin('mailboxes', 'mailboxes.id', 'api_keys.mailbox_id')
      .select('api_keys.id')
      .where('api_keys.id', 'in', ids)
      .where('api_keys.revoked_at', 'is', null)
      .where('mailboxes.status', '=', 'active')
      .execute();
    return new Set(rows.map((r) => r.id));
  }

  async revokeAllForMailbox(mailboxId: string, at: string): Promise<void> {
    await this.ctx.db.updateTable('api_keys').set({ revoked_at: at }).where('mailbox_id', '=', mailboxId).where('revoked_at', 'is', null).execute();
  }
}

/** Kept rows of forAuthenticationWithMailbox, split (frozen, like the rows). */
const splits = new WeakMap<object, KeyWithMailbox>();

/** The key and the named mailbox of one forAuthenticationWithMailbox row. */
function splitKeyWithMailbox(row: (AuthKeyRow & TargetColumns) | undefined): KeyWithMailbox | undefined {
  if (!row) return undefined;
  const key: AuthKeyRow = {
    id: row.id,
    team_id: row.team_id,
    kind: row.kind,
    mailbox_id: row.mailbox_id,
    secret_hash: row.secret_hash,
    revoked_at: row.revoked_at,
    mailbox_status: row.mailbox_status,
    mailbox_email: row.mailbox_email,
  };
  if (row.target_id === null) return { key, mailbox: undefined };
  const mailbox: Nullable<MailboxViewRow> = {
    id: row.target_id,
    team_id: row.target_team_id,
    email: row.target_email,
    display_name: row.target_display_name,
    quota_bytes: row.target_quota_bytes,
    send_scope: row.target_send_scope,
    status: row.target_status,
    created_at: row.target_created_at,
  };
  // A row matched target.id (a primary key): its NOT NULL columns are set.
  return { key, mailbox: mailbox as MailboxViewRow };
}
