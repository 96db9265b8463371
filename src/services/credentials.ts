// Who is calling: a bearer secret (REST), or a username + password (SMTP, IMAP) resolves to a
// principal. One mailbox credential works everywhere; a suspended mailbox's keys stop working.
import { timingSafeEqual } from 'node:crypto';
import { hashSecret, secretKindOf } from '../core/ids.ts';
import type { AuthKeyRow, MailboxViewRow } from '../store/index.ts';
import type { ServiceContext } from './context.ts';

export type Principal =
  | { kind: 'root'; keyId: string; teamId: string }
  | { kind: 'mailbox'; keyId: string; teamId: string; mailboxId: string; email: string };

/**
 * The columns of a mailbox its view needs, read along with the credential (see
 * authenticateWithMailbox); row undefined: no such mailbox.
 */
export interface PrefetchedMailbox {
  row: MailboxViewRow | undefined;
}

/** A principal (null: not authenticated) and the mailbox read with it. */
export interface AuthWithMailbox {
  principal: Principal | null;
  mailbox: PrefetchedMailbox;
}

// The two SHA-256 digests compared, decoded into buffers allocated once (not two per request).
const storedDigest = Buffer.alloc(32);
const givenDigest = Buffer.alloc(32);

/** Two hex SHA-256 digests are equal, compared in constant time (crypto.timingSafeEqual). */
function sameDigest(storedHex: string, givenHex: string): boolean {
  // A stored hash that is not 64 hex digits (32 bytes) matches nothing.
  if (storedHex.length !== 64 || givenHex.length !== 64) return false;
  if (storedDigest.write(storedHex, 'hex') !== 32 || givenDigest.write(givenHex, 'hex') !== 32) return false;
  return timingSafeEqual(storedDigest, givenDigest);
}

/** The security checks on the key row read for `hash`: every request runs them, on a fresh read. */
function principalOf(row: AuthKeyRow | undefined, hash: string, kind: 'root' | 'mailbox'): Principal | null {
  // The lookup is by hash; compare again in constant time so no timing tells how much matched.
  if (!row || !sameDigest(row.secret_hash, hash)) return null;
  if (row.revoked_at !== null || row.kind !== kind) return null;
  if (row.kind === 'root') return { kind: 'root', keyId: row.id, teamId: row.team_id };
  if (row.mailbox_id === null || row.mailbox_status !== 'active' || row.mailbox_email === null) return null;
  return { kind: 'mailbox', keyId: row.id, teamId: row.team_id, mailboxId: row.mailbox_id, email: row.mailbox_email };
}

export class CredentialsService {
  private readonly ctx: ServiceContext;
  constructor(ctx: ServiceContext) {
    this.ctx = ctx;
  }

  /**
   * Returns the principal for a secret, or null when it is unknown, revoked or its mailbox is not
   * active. No cache: a revocation by any process (the CLI, another server) holds at once.
   */
  async authenticate(secret: string): Promise<Principal | null> {
    return this.authenticateNow(secret);
  }

  /**
   * authenticate, answered synchronously when the store reads at once (SQLite outside a
   * transaction), else a promise: the HTTP request path takes no promise hop when it need not.
   * `sameTurn`: called synchronously from the dispatch of a request received in this event-loop
   * turn, so the read may share the turn's check for other processes' commits (store/fast-read.ts).
   */
  authenticateNow(secret: string, sameTurn = false): Principal | null | Promise<Principal | null> {
    const kind = secretKindOf(secret);
    if (kind === null || secret.length > 200) return null;
    const hash = hashSecret(secret);
    // One read: the key with its mailbox's status and address.
    const row = this.ctx.store.keys.forAuthentication(hash, sameTurn);
    return row instanceof Promise ? row.then((r) => principalOf(r, hash, kind)) : principalOf(row, hash, kind);
  }

  /**
   * authenticate, and the mailbox `mailboxId` read in the same query (one round trip instead of
   * two, for the routes that read one mailbox). The mailbox is returned whoever asks: the caller
   * checks it belongs to the principal's team, as it would after reading it itself.
   */
  async authenticateWithMailbox(secret: string, mailboxId: string): Promise<AuthWithMailbox> {
    return this.authenticateWithMailboxNow(secret, mailboxId);
  }

  /** authenticateWithMailbox, synchronously when the store reads at once (as authenticateNow). */
  authenticateWithMailboxNow(secret: string, mailboxId: string, sameTurn = false): AuthWithMailbox | Promise<AuthWithMailbox> {
    const kind = secretKindOf(secret);
    if (kind === null || secret.length > 200) return { principal: null, mailbox: { row: undefined } };
    const hash = hashSecret(secret);
    const found = this.ctx.store.keys.forAuthenticationWithMailbox(hash, mailboxId, sameTurn);
    const outcome = (f: Awaited<typeof found>): AuthWithMailbox => ({ principal: principalOf(f?.key, hash, kind), mailbox: { row: f?.mailbox } });
    return found instanceof Promise ? found.then(outcome) : outcome(found);
  }

  /** SMTP and IMAP login: the username is the mailbox address, the password its credential. */
  async authenticateLogin(username: string, password: string): Promise<Principal | null> {
    const principal = await this.authenticate(password);
    if (!principal || principal.kind !== 'mailbox') return null;
    return principal.email === username.trim().toLowerCase() ? principal : null;
  }
}
