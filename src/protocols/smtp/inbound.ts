// The inbound SMTP listener (the MX): smtp-server owns the protocol, this file supplies policy
// through its hooks. Recipients are checked at RCPT (unknown, inactive, sender filter, quota), the
// message is stored by ingest before the 250, STARTTLS is offered with the configured or
// self-signed certificate, and there is no AUTH here (submission is a separate listener).
import { Resolver as CallbackResolver } from 'node:dns';
import type { Socket } from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { randomString } from '../../core/ids.ts';
import type { Services } from '../../services/index.ts';
import { inspectMessage, resolverFor, sharedInspectPool, type Inspected, type InspectTask } from './inspect.ts';
import { IncomingLogsService } from '../../services/mail/incoming-logs.ts';
import { RecipientsService } from '../../services/mail/recipients.ts';
import { SpamService } from '../../services/mail/spam.ts';
import { DNS_TIMEOUT_MS } from '../../config/limits.ts';
import { deliverMessage, logRefusals, refuseOversized, type DeliveryDeps, type Transaction } from './delivery.ts';
import { readMessage, SMTP_CLOSE_GRACE_MS, SMTP_COMMAND_LINE_MAX } from './limits.ts';
import { ENHANCED_PREFIX, recipientReply, REPLIES, SmtpReply } from './replies.ts';
import { loadTlsMaterial, type TlsMaterial } from './tls.ts';

type Connection = SMTPServer['connections'] extends Set<infer C> ? C : never;

export interface InboundSmtp {
  /** The bound port (differs from the configured one when that is 0). */
  readonly port: number;
  /** Stops accepting, tells idle sessions 421, lets messages in DATA finish (bounded), then resolves. */
  close(): Promise<void>;
}

export interface InboundSmtpOptions {
  host?: string;
  port?: number;
  /** Certificate to offer with STARTTLS; loaded from the configuration when omitted. */
  tls?: TlsMaterial;
  /** Policy services; built from `services` when omitted (tests substitute a stubbed DNS resolver this way). */
  deps?: Partial<Omit<DeliveryDeps, 'services'>>;
}

interface SessionState {
  commands: number;
  tx: Transaction | null;
  /** Between the DATA command and its reply: a shutdown waits for it. */
  busy: boolean;
}

/** SIZE= of MAIL FROM, when present and sane. */
function declaredSize(args: false | Record<string, string | true>): number | null {
  const size = args ? args.SIZE : undefined;
  if (typeof size !== 'string' || !/^\d{1,15}$/.test(size)) return null;
  return Number(size);
}

export async function startInboundSmtp(services: Services, opts: InboundSmtpOptions = {}): Promise<InboundSmtp> {
  const config = services.config;
  const limits = config.smtp;
  const tls = opts.tls ?? (await loadTlsMaterial(config, services.clock.now()));
  const recipients = new RecipientsService(services, services.filters);
  const pool = sharedInspectPool(limits.inspectWorkers);
  const inspectHere = (task: InspectTask): Promise<Inspected> => inspectMessage(task, resolverFor(config.dnsServers));
  const deps: DeliveryDeps = {
    services,
    inspect:
      opts.deps?.inspect ??
      (async (task) => {
        let r: Inspected;
        if (pool) {
          try {
            r = await pool.run(task, config.dnsServers);
          } catch (err) {
            // The thread failed (not the message: inspection never throws for bad mail): inspect here.
            services.log.error({ event: 'smtp.inspect_worker_failed', err: (err as Error).message });
            r = await inspectHere(task);
          }
        } else {
          r = await inspectHere(task);
        }
        if (r.authError !== null) services.log.warn({ event: 'smtp.auth_failed', err: r.authError });
        return r;
      }),
    spam: opts.deps?.spam ?? new SpamService(services),
    logs: opts.deps?.logs ?? new IncomingLogsService(services),
  };
  const states = new WeakMap<SMTPServerSession, SessionState>();
  const stateOf = (session: SMTPServerSession): SessionState => {
    let s = states.get(session);
    if (!s) {
      s = { commands: 0, tx: null, busy: false };
      states.set(session, s);
    }
    return s;
  };

  const reverse = new CallbackResolver({ timeout: DNS_TIMEOUT_MS, tries: 1 });
  if (config.dnsServers.length > 0) reverse.setServers(config.dnsServers);

  /**
   * Two things smtp-server has no hook for, added per connection: replies whose text already
   * carries an RFC 3463 code are sent without the library's default code for that reply number
   * (it maps every 550 to 5.1.1), and commands are counted so a session that never ends gets 421.
   * Both wrap smtp-server's own connection methods (`send`, `_onCommand`); the reply-code and
   * command-limit tests in test/smtp fail if a library upgrade changes them.
   */
  const instrument = (conn: Connection, state: SessionState): void => {
    const send = batchedReplies(conn);
    conn.send = (code, data, context) => send(code, data, typeof data === 'string' && ENHANCED_PREFIX.test(data) ? false : context);
    const onCommand = conn._onCommand.bind(conn);
    conn._onCommand = (command, callback) => {
      state.commands += 1;
      if (state.commands > limits.maxCommands) {
        services.log.info({ event: 'smtp.too_many_commands', remote: conn.remoteAddress });
        conn.send(421, REPLIES.tooManyCommands().message);
        return;
      }
      onCommand(command, callback);
    };
  };

  const server = new SMTPServer({
    name: config.hostname,
    banner: 'Mailmux',
    secure: false,
    key: tls.key,
    cert: tls.cert,
    disabledCommands: ['AUTH'],
    authOptional: true,
    hideDSN: true,
    // RFC 2034 codes on every reply: they tell a sending MTA which failures are about one mailbox.
    hideENHANCEDSTATUSCODES: false,
    size: limits.maxMessageBytes,
    rejectOversized: true,
    maxRecipients: limits.maxRecipients,
    maxClients: limits.maxConnections,
    socketTimeout: limits.idleTimeoutSeconds * 1000,
    closeTimeout: SMTP_CLOSE_GRACE_MS,
    maxCommandLength: SMTP_COMMAND_LINE_MAX,
    resolver: reverse,
    logger: false,

    onConnect(session, callback) {
      const state = stateOf(session);
      for (const conn of server.connections) {
        if (conn.session === session) {
          instrument(conn, state);
          break;
        }
      }
      callback();
    },

    onMailFrom(address, session, callback) {
      stateOf(session).tx = { queueId: randomString(16), sender: address.address.toLowerCase(), declaredSize: declaredSize(address.args), accepted: new Map() };
      callback();
    },

    onRcptTo(address, session, callback) {
      const tx = stateOf(session).tx;
      if (!tx) return callback(REPLIES.localError());
      recipients
        .check({ recipient: address.address, sender: tx.sender, declaredSize: tx.declaredSize })
        .then(async (verdict) => {
          if (verdict.ok) {
            tx.accepted.set(verdict.address, verdict);
            return callback();
          }
          services.log.info({ event: 'smtp.rcpt_rejected', queue_id: tx.queueId, reason: verdict.reason, remote: session.remoteAddress });
          if (verdict.logged) {
            await logRefusals(deps, [{
              mailboxId: verdict.mailbox?.id ?? null,
              mailboxEmail: verdict.mailbox?.email ?? null,
              recipient: verdict.address,
              sender: tx.sender,
              reason: verdict.reason,
              sizeBytes: tx.declaredSize,
              receivedAt: services.clock.now(),
            }]);
          }
          callback(recipientReply(verdict.reason, limits.quotaReply));
        })
        .catch((err: unknown) => {
          services.log.error({ event: 'smtp.rcpt_failed', queue_id: tx.queueId, err: (err as Error).message });
          callback(REPLIES.localError());
        });
    },

    onData(stream, session, callback) {
      const state = stateOf(session);
      const tx = state.tx;
      state.busy = true;
      const finish = (err: SmtpReply | null, text?: string): void => {
        state.busy = false;
        state.tx = null;
        if (err) callback(err);
        else callback(null, text);
      };
      readMessage(stream, limits.maxMessageBytes)
        .then(async (raw) => {
          if (!tx || tx.accepted.size === 0) return finish(REPLIES.localError());
          if (raw === null) return finish(await refuseOversized(deps, tx, limits.maxMessageBytes));
          const tlsInfo = session.secure && session.tlsOptions ? { protocol: session.tlsOptions.version ?? session.tlsOptions.standardName ?? '', cipher: session.tlsOptions.name } : null;
          const delivered = await deliverMessage(deps, tx, {
            ip: session.remoteAddress,
            helo: session.hostNameAppearsAs || session.clientHostname,
            clientHostname: session.clientHostname,
            protocol: session.transmissionType,
            tls: tlsInfo,
          }, raw);
          finish(null, delivered.text);
        })
        .catch((err: unknown) => {
          if (err instanceof SmtpReply) return finish(err);
          // The client went away mid-DATA (nothing was stored), or something failed unexpectedly.
          if ((err as { code?: string }).code !== 'ECONNECTION') services.log.error({ event: 'smtp.data_failed', err: (err as Error).message });
          finish(REPLIES.localError());
        });
    },

    onClose(session) {
      states.delete(session);
    },
  });

  server.on('error', (err: Error & { code?: string }) => {
    // Per-connection socket errors (resets, TLS handshakes gone wrong) are routine on an MX.
    services.log.warn({ event: 'smtp.connection_error', code: err.code, err: err.message });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.server.once('error', onError);
    server.listen(opts.port ?? config.smtpPort, opts.host ?? config.listenHost, () => {
      server.server.off('error', onError);
      resolve();
    });
  });
  const address = server.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  services.log.info({ event: 'smtp.listening', port, tls: tls.selfSigned ? 'self-signed' : 'configured' });

  let closing: Promise<void> | null = null;
  return {
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const conn of server.connections) {
          // send(421) also closes the connection.
          if (!stateOf(conn.session).busy) conn.send(421, REPLIES.shuttingDown().message);
        }
      });
      return closing;
    },
  };
}

/**
 * smtp-server's `send` for `conn`, with the replies written in one turn of the event loop going out
 * in one socket write: a pipelined MAIL, RCPT and DATA (RFC 2920) get their three replies in one
 * segment. A write on a loopback or LAN socket costs tens of microseconds of the event loop
 * (the kernel's TCP send and receive run in it), and the sender wakes once instead of three times;
 * with pipelining senders, writing them one by one took about a seventh of the event loop's time
 * per message. The socket is corked at the first reply of a turn and uncorked in the same turn's
 * check phase, after the work that I/O started (hooks resolve in microtasks) has run, so no reply
 * waits longer than that.
 * A 220 (the greeting, and the reply to STARTTLS, after which the TLS layer takes the socket over)
 * flushes what waits and is written at once; closing a socket (`end`) flushes as well.
 */
function batchedReplies(conn: Connection): Connection['send'] {
  const send = conn.send.bind(conn);
  let corked: Socket | null = null;
  const flush = (): void => {
    const socket = corked;
    corked = null;
    if (socket && !socket.destroyed) socket.uncork();
  };
  return (code, data, context) => {
    const socket = (conn as unknown as { _socket?: Socket })._socket;
    if (code === 220) {
      flush();
    } else if (socket && corked !== socket && !socket.destroyed) {
      flush();
      corked = socket;
      socket.cork();
      setImmediate(flush);
    }
    send(code, data, context);
  };
}
