// SMTP submission on the mailbox credential: port 2587 (587) with STARTTLS and 2465 (465) with
// implicit TLS. AUTH PLAIN / LOGIN only over TLS (unless MAILMUX_SUBMISSION_ALLOW_INSECURE_AUTH),
// username = the mailbox address, password = the mailbox key. The envelope sender and the From
// header must be the mailbox's address (else 550 5.7.1); a missing Message-ID or Date is added,
// Bcc headers are dropped, and the message goes to outbound.submit like an API send (Sent + queue).
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { AppError } from '../../core/errors.ts';
import { normaliseEmail, splitAddress } from '../../mime/addresses.ts';
import { parseAddresses } from '../../mime/header-values.ts';
import type { Principal } from '../../services/credentials.ts';
import type { Services } from '../../services/index.ts';
import { completeSubmittedMessage, OUTBOUND_RAW_BYTES_MAX } from '../../services/send/compose.ts';
import { readMessage, SMTP_CLOSE_GRACE_MS, SMTP_COMMAND_LINE_MAX } from './limits.ts';
import { REPLIES, SmtpReply } from './replies.ts';
import { loadTlsMaterial, type TlsMaterial } from './tls.ts';

type MailboxPrincipal = Extract<Principal, { kind: 'mailbox' }>;

export interface SubmissionSmtp {
  /** Bound ports: STARTTLS submission and implicit-TLS submissions. */
  readonly port: number;
  readonly tlsPort: number;
  close(): Promise<void>;
}

export interface SubmissionOptions {
  host?: string;
  /** Overrides of the configured ports (0 picks a free one). */
  port?: number;
  tlsPort?: number;
  tls?: TlsMaterial;
}

export const SUBMISSION_REPLIES = {
  authFailed: () => new SmtpReply(535, '5.7.8', 'Authentication credentials invalid'),
  senderNotOwned: () => new SmtpReply(550, '5.7.1', 'Sender address is not this mailbox\'s address'),
  fromNotOwned: () => new SmtpReply(550, '5.7.1', 'From header must be this mailbox\'s address'),
  mailboxInactive: () => new SmtpReply(550, '5.7.1', 'Mailbox is suspended or deleted; sending is refused'),
  badRecipient: () => new SmtpReply(553, '5.1.3', 'Recipient address is not valid'),
  tooManyRecipients: (max: number) => new SmtpReply(452, '4.5.3', `Too many recipients (at most ${max} per message)`),
  rejected: (text: string) => new SmtpReply(554, '5.6.0', text),
} as const;

/** The unfolded value of the first `name:` field of a header block. */
function headerValue(headerText: string, name: string): string | undefined {
  const lines = headerText.split('\r\n');
  const re = new RegExp(`^${name}\\s*:`, 'i');
  const at = lines.findIndex((l) => re.test(l));
  if (at < 0) return undefined;
  let value = lines[at]!.slice(lines[at]!.indexOf(':') + 1);
  for (let i = at + 1; i < lines.length && /^[ \t]/.test(lines[i]!); i++) value += ` ${lines[i]!.trim()}`;
  return value.trim();
}

function principalOf(session: SMTPServerSession): MailboxPrincipal | null {
  const user = session.user as unknown;
  return user && typeof user === 'object' && (user as Principal).kind === 'mailbox' ? (user as MailboxPrincipal) : null;
}

/** Service errors as submission replies: permanent for the sender's mistakes, 451 for ours. */
function replyFor(err: unknown): SmtpReply {
  if (err instanceof SmtpReply) return err;
  if (err instanceof AppError) {
    switch (err.code) {
      case 'insufficient_permissions':
        return SUBMISSION_REPLIES.mailboxInactive();
      case 'payload_too_large':
        return REPLIES.tooLarge(OUTBOUND_RAW_BYTES_MAX);
      case 'invalid_parameter':
      case 'validation_error':
        return SUBMISSION_REPLIES.rejected(err.message);
      default:
        break;
    }
  }
  return REPLIES.localError();
}

export async function startSubmission(services: Services, opts: SubmissionOptions = {}): Promise<SubmissionSmtp> {
  const config = services.config;
  const tls = opts.tls ?? (await loadTlsMaterial(config, services.clock.now()));
  const log = services.log;

  const make = (implicitTls: boolean): SMTPServer =>
    new SMTPServer({
      secure: implicitTls,
      key: tls.key,
      cert: tls.cert,
      name: config.hostname,
      banner: 'Mailmux submission',
      logger: false,
      authMethods: ['PLAIN', 'LOGIN'],
      authOptional: false,
      allowInsecureAuth: config.submissionAllowInsecureAuth,
      ...(implicitTls ? { disabledCommands: ['STARTTLS'] } : {}),
      size: OUTBOUND_RAW_BYTES_MAX,
      maxClients: config.smtp.maxConnections,
      socketTimeout: config.smtp.idleTimeoutSeconds * 1000,
      closeTimeout: SMTP_CLOSE_GRACE_MS,
      maxAllowedUnauthenticatedCommands: 10,
      onAuth(auth, session, callback) {
        const username = auth.username ?? '';
        const password = auth.password ?? '';
        if (!username || !password || username.length > SMTP_COMMAND_LINE_MAX || password.length > SMTP_COMMAND_LINE_MAX) return callback(SUBMISSION_REPLIES.authFailed());
        services.credentials
          .authenticateLogin(username, password)
          .then((principal) => {
            if (!principal) {
              log.info({ event: 'submission.auth_failed', remote: session.remoteAddress });
              return callback(SUBMISSION_REPLIES.authFailed());
            }
            callback(null, { user: principal });
          })
          .catch((err: unknown) => {
            log.error({ event: 'submission.auth_error', err: (err as Error).message });
            callback(REPLIES.localError());
          });
      },
      onMailFrom(address, session, callback) {
        const principal = principalOf(session);
        if (!principal) return callback(new SmtpReply(530, '5.7.0', 'Authentication required'));
        if (normaliseEmail(address.address) !== principal.email) return callback(SUBMISSION_REPLIES.senderNotOwned());
        services.store.mailboxes
          .get(principal.mailboxId)
          .then((m) => callback(m && m.status === 'active' ? null : SUBMISSION_REPLIES.mailboxInactive()))
          .catch(() => callback(REPLIES.localError()));
      },
      onRcptTo(address, session, callback) {
        if (!splitAddress(normaliseEmail(address.address))) return callback(SUBMISSION_REPLIES.badRecipient());
        if (session.envelope.rcptTo.length >= config.smtp.maxRecipients) return callback(SUBMISSION_REPLIES.tooManyRecipients(config.smtp.maxRecipients));
        callback();
      },
      onData(stream, session, callback) {
        const principal = principalOf(session);
        readMessage(stream, OUTBOUND_RAW_BYTES_MAX)
          .then(async (raw) => {
            if (!principal) throw new SmtpReply(530, '5.7.0', 'Authentication required');
            if (!raw) throw REPLIES.tooLarge(OUTBOUND_RAW_BYTES_MAX);
            const domain = principal.email.slice(principal.email.lastIndexOf('@') + 1);
            const done = completeSubmittedMessage(raw, { messageIdDomain: domain, now: new Date(services.clock.now()) });
            const from = parseAddresses(headerValue(done.headerText, 'from'), new Set(), 'from');
            if (from.length === 0 || from.some((a) => normaliseEmail(a.email) !== principal.email)) throw SUBMISSION_REPLIES.fromNotOwned();
            if (done.raw.byteLength > OUTBOUND_RAW_BYTES_MAX) throw REPLIES.tooLarge(OUTBOUND_RAW_BYTES_MAX);
            const [identity] = await services.store.identities.listForMailbox(principal.mailboxId);
            const sent = await services.outbound.submit({
              mailboxId: principal.mailboxId,
              raw: done.raw,
              envelopeFrom: principal.email,
              recipients: session.envelope.rcptTo.map((r) => normaliseEmail(r.address)),
              source: 'smtp',
              identityId: identity?.id ?? null,
            });
            log.info({ event: 'submission.accepted', mailbox_id: principal.mailboxId, submission_id: sent.submissionId, recipients: session.envelope.rcptTo.length, size_bytes: done.raw.byteLength });
            callback(null, `2.0.0 Ok: queued as ${sent.emailId}`);
          })
          .catch((err: unknown) => {
            const reply = replyFor(err);
            if (reply.responseCode >= 500 || reply === undefined) log.info({ event: 'submission.refused', mailbox_id: principal?.mailboxId, code: reply.responseCode });
            if (!(err instanceof SmtpReply) && !(err instanceof AppError)) log.error({ event: 'submission.error', err: (err as Error).message });
            callback(reply);
          });
      },
    });

  const listen = (server: SMTPServer, port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, opts.host ?? config.listenHost, () => {
        server.off('error', reject);
        server.on('error', (err) => log.warn({ event: 'submission.server_error', err: (err as Error).message }));
        resolve((server.server.address() as { port: number }).port);
      });
    });

  const plain = make(false);
  const implicit = make(true);
  const port = await listen(plain, opts.port ?? config.submissionPort);
  let tlsPort: number;
  try {
    tlsPort = await listen(implicit, opts.tlsPort ?? config.submissionsPort);
  } catch (err) {
    await new Promise<void>((r) => plain.close(() => r()));
    throw err;
  }
  log.info({ event: 'submission.listening', port, tls_port: tlsPort });
  return {
    port,
    tlsPort,
    async close() {
      await Promise.all([plain, implicit].map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}
