// Who is calling: a bearer secret (REST), or a username + password (SMTP, IMAP) resolves to a
// principal. One mailbox credential works everywhere; a suspended mailbox's keys stop working.
import { timingSafeEqual } from 'node:crypto';
import { hashSecret, secretKindOf } from '../core/ids.ts';
import type { ServiceContext } from './context.ts';

export type Principal =
  | { kind: 'root'; keyId: string; teamId: string }
  | { kind: 'mailbox'; keyId: string; teamId: string; mailboxId: string; email: string };

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
    const kind = secretKindOf(secret);
    if (kind === null || secret.length > 200) return null;
    return this.lookup(hashSecret(secret), kind);
  }

  private async lookup(hash: string, kind: 'root' | 'mailbox'): Promise<Principal | null> {
    const row = await this.ctx.store.keys.byHash(hash);
    // The lookup is by hash; compare again in constant time so no timing tells how much matched.
    if (!row || !timingSafeEqual(Buffer.from(row.secret_hash, 'hex'), Buffer.from(hash, 'hex'))) return null;
    if (row.revoked_at !== null || row.kind !== kind) return null;
    if (row.kind === 'root') return { kind: 'root', keyId: row.id, teamId: row.team_id };
    if (row.mailbox_id === null) return null;
    const mailbox = await this.ctx.store.mailboxes.get(row.mailbox_id);
    if (!mailbox || mailbox.status !== 'active') return null;
    return { kind: 'mailbox', keyId: row.id, teamId: row.team_id, mailboxId: mailbox.id, email: mailbox.email };
  }

  /** SMTP and IMAP login: the username is the mailbox address, the password its credential. */
  async authenticateLogin(username: string, password: string): Promise<Principal | null> {
    const principal = await this.authenticate(password);
    if (!principal || principal.kind !== 'mailbox') return null;
    return principal.email === username.trim().toLowerCase() ? principal : null;
  }
}
