// Typed configuration from MAILMUX_* environment variables. Every variable is listed in the
// README's configuration table; `describeConfig()` is the source of that table.
import { availableParallelism, hostname } from 'node:os';
import { resolve } from 'node:path';

export interface Config {
  dataDir: string;
  databaseUrl: string | null;
  listenHost: string;
  httpPort: number;
  smtpPort: number;
  submissionPort: number;
  submissionsPort: number;
  /** Development only: AUTH on SMTP submission before STARTTLS (passwords in clear text). */
  submissionAllowInsecureAuth: boolean;
  imapPort: number;
  imapsPort: number;
  hostname: string;
  publicUrl: string;
  defaultDomain: string;
  dnsServers: string[];
  logLevel: string;
  rateLimits: { management: number; mailbox: number; sending: number; unauthenticated: number; windowSeconds: number };
  teamLimits: { domains: number; mailboxes: number; keys: number };
  bodyLimitBytes: number;
  verificationPrefix: string;
  /** Inbound SMTP (MX) policy. */
  smtp: {
    maxMessageBytes: number;
    maxRecipients: number;
    maxCommands: number;
    maxConnections: number;
    idleTimeoutSeconds: number;
    /** Over-quota answer at RCPT: 452 4.2.2 (temporary, the sender retries) or 552 5.2.2 (permanent). */
    quotaReply: 'temporary' | 'permanent';
    /** Worker threads that authenticate and parse inbound mail (protocols/smtp/inspect.ts); 0: the event loop does. */
    inspectWorkers: number;
  };
  /** SQLite: ingest writes its batches on a thread of its own (app/ingest-writer.ts). */
  sqliteWriterThread: boolean;
  /** SQLite: the VFS of the process's connections (store/sqlite/vfs.ts). */
  sqliteVfs: 'mailmux' | 'unix';
  /** PEM files for STARTTLS (SMTP, later IMAP); both null means a self-signed pair in the data folder. */
  tlsCertFile: string | null;
  tlsKeyFile: string | null;
  spamThreshold: number;
  rspamdUrl: string | null;
  /** Days of change log kept for /changes and query-changes (older states get sync_required). */
  changeRetentionDays: number;
  /** Webhook delivery (src/workers/webhooks.ts). */
  webhooks: { allowPrivate: boolean; caFile: string | null; timeoutSeconds: number; concurrency: number; maxPerTeam: number };
  realtime: { maxStreamsPerKey: number; eventRetentionHours: number; eventPollSeconds: number };
  /** Outbound delivery (src/workers/outbound.ts). */
  outbound: { undoSeconds: number; retryHours: number; retryBaseSeconds: number; leaseSeconds: number; mxPort: number; timeoutSeconds: number; concurrency: number; domainConcurrency: number; maxPerTeamProviders: number };
}

interface VarSpec {
  name: string;
  default: string;
  description: string;
}

export const CONFIG_VARS: readonly VarSpec[] = [
  { name: 'MAILMUX_DATA_DIR', default: './data', description: 'Folder for the SQLite database, blobs and the self-signed certificate' },
  { name: 'MAILMUX_DATABASE_URL', default: '(unset: SQLite in the data folder)', description: 'postgres://… to run on PostgreSQL (blobs are stored in the database too)' },
  { name: 'MAILMUX_LISTEN_HOST', default: '127.0.0.1', description: 'Address every listener binds; set 0.0.0.0 to serve the network' },
  { name: 'MAILMUX_HTTP_PORT', default: '8080', description: 'REST API (Management, Mailbox, Sending) and SSE' },
  { name: 'MAILMUX_SMTP_PORT', default: '2525', description: 'Inbound SMTP (MX); production uses 25' },
  { name: 'MAILMUX_SUBMISSION_PORT', default: '2587', description: 'SMTP submission with STARTTLS; production uses 587' },
  { name: 'MAILMUX_SUBMISSIONS_PORT', default: '2465', description: 'SMTP submission with implicit TLS; production uses 465' },
  { name: 'MAILMUX_SUBMISSION_ALLOW_INSECURE_AUTH', default: 'false', description: 'true allows AUTH on the submission port before STARTTLS (development only: the password crosses the network in clear text)' },
  { name: 'MAILMUX_IMAP_PORT', default: '1143', description: 'IMAP with STARTTLS; production uses 143' },
  { name: 'MAILMUX_IMAPS_PORT', default: '1993', description: 'IMAP with implicit TLS; production uses 993' },
  { name: 'MAILMUX_HOSTNAME', default: '(the machine host name)', description: 'Server name: MX target, SPF host, credential `server`, SMTP greeting' },
  { name: 'MAILMUX_PUBLIC_URL', default: 'http://<listen host>:<http port>', description: 'Base URL used in Location headers and links handed to clients' },
  { name: 'MAILMUX_DEFAULT_DOMAIN', default: 'mailmux.localhost', description: 'Domain verified at start on which any team can create mailboxes with no DNS' },
  { name: 'MAILMUX_DNS_SERVERS', default: '(system resolvers)', description: 'Comma-separated resolvers for domain verification and MX lookups, e.g. 127.0.0.1:5353' },
  { name: 'MAILMUX_LOG_LEVEL', default: 'info', description: 'pino level: fatal, error, warn, info, debug, trace, silent' },
  { name: 'MAILMUX_RATE_LIMIT_MANAGEMENT', default: '600', description: 'Management API requests per key per window' },
  { name: 'MAILMUX_RATE_LIMIT_MAILBOX', default: '1800', description: 'Mailbox API requests per key per window' },
  { name: 'MAILMUX_RATE_LIMIT_SENDING', default: '1800', description: 'Sending API requests per key per window' },
  { name: 'MAILMUX_RATE_LIMIT_UNAUTHENTICATED', default: '300', description: 'Requests per client address per window without a valid key' },
  { name: 'MAILMUX_RATE_LIMIT_WINDOW_SECONDS', default: '60', description: 'Rate-limit window' },
  { name: 'MAILMUX_MAX_DOMAINS_PER_TEAM', default: '100', description: 'Domains a team may create (409 limit_exceeded beyond)' },
  { name: 'MAILMUX_MAX_MAILBOXES_PER_TEAM', default: '1000', description: 'Mailboxes (not deleted) a team may hold' },
  { name: 'MAILMUX_MAX_KEYS_PER_TEAM', default: '2000', description: 'Active mailbox keys a team may hold' },
  { name: 'MAILMUX_BODY_LIMIT_BYTES', default: '1048576', description: 'Largest JSON request body on Management routes (413 beyond)' },
  { name: 'MAILMUX_SMTP_MAX_MESSAGE_BYTES', default: '26214400', description: 'Largest inbound message (advertised with SIZE; 552 5.3.4 beyond)' },
  { name: 'MAILMUX_SMTP_MAX_RECIPIENTS', default: '100', description: 'Recipients per inbound message (452 4.5.3 beyond; RFC 5321 asks for at least 100)' },
  { name: 'MAILMUX_SMTP_MAX_COMMANDS', default: '1000', description: 'Commands per inbound SMTP session before 421 and disconnect' },
  { name: 'MAILMUX_SMTP_MAX_CONNECTIONS', default: '100', description: 'Concurrent inbound SMTP connections (421 beyond); each may hold one message of up to the size limit in memory' },
  { name: 'MAILMUX_SMTP_IDLE_TIMEOUT_SECONDS', default: '300', description: 'Inbound SMTP idle time before the server hangs up (RFC 5321 server timeout: 5 minutes)' },
  { name: 'MAILMUX_SMTP_INSPECT_WORKERS', default: '(0 with 2 cores or fewer, else cores - 1, at most 4)', description: 'Worker threads that authenticate (SPF, DKIM, DMARC, ARC) and parse inbound mail while the main thread speaks SMTP; 0 does it on the main thread' },
  { name: 'MAILMUX_SQLITE_WRITER_THREAD', default: 'true', description: 'SQLite: received mail is written to the database by a thread of its own, with its own connection, while the main thread speaks SMTP and serves the API; false writes on the main thread' },
  { name: 'MAILMUX_SQLITE_VFS', default: 'mailmux', description: "SQLite: `mailmux` writes each commit's WAL pages with one system call instead of two per page (a C shim built by `npm install`; SQLite's own VFS is used when it could not be built); `unix` always uses SQLite's own" },
  { name: 'MAILMUX_SMTP_QUOTA_REPLY', default: 'temporary', description: 'Over-quota answer at RCPT: `temporary` (452 4.2.2, the sender retries) or `permanent` (552 5.2.2)' },
  { name: 'MAILMUX_TLS_CERT_FILE', default: '(unset: self-signed, made on first start)', description: 'PEM certificate chain for STARTTLS; set together with MAILMUX_TLS_KEY_FILE' },
  { name: 'MAILMUX_TLS_KEY_FILE', default: '(unset: self-signed, made on first start)', description: 'PEM private key for STARTTLS; the self-signed pair is kept in `<data dir>/tls/`' },
  { name: 'MAILMUX_SPAM_THRESHOLD', default: '5', description: 'Built-in spam score at or above which inbound mail goes to the spam folder (rules in src/services/mail/spam.ts)' },
  { name: 'MAILMUX_SSE_MAX_STREAMS_PER_KEY', default: '20', description: 'Open GET /mailbox/events streams per credential in this process (429 beyond)' },
  { name: 'MAILMUX_EVENT_POLL_SECONDS', default: '2', description: 'Safety-net poll of the event log for events committed by other processes (on PostgreSQL, NOTIFY wakes every process at once)' },
  { name: 'MAILMUX_EVENT_RETENTION_HOURS', default: '168', description: 'Event log kept for SSE replay (Last-Event-ID) and webhook payloads; older resumes get `sync_required`' },
  { name: 'MAILMUX_WEBHOOK_ALLOW_PRIVATE', default: 'false', description: 'true lets webhooks reach loopback, private, link-local and other internal addresses (development only; refused by default against SSRF)' },
  { name: 'MAILMUX_WEBHOOK_CA_FILE', default: '(unset: the system CAs)', description: 'Extra PEM CA certificates trusted for webhook HTTPS endpoints, e.g. a development receiver\'s self-signed certificate' },
  { name: 'MAILMUX_WEBHOOK_TIMEOUT_SECONDS', default: '10', description: 'A webhook POST without a complete answer by then counts as a timeout and is retried' },
  { name: 'MAILMUX_WEBHOOK_CONCURRENCY', default: '16', description: 'Webhook POSTs in flight per process' },
  { name: 'MAILMUX_MAX_WEBHOOKS_PER_TEAM', default: '100', description: 'Webhook subscriptions a team may hold (409 limit_exceeded beyond)' },
  { name: 'MAILMUX_SEND_UNDO_SECONDS', default: '0', description: 'Undo window of a send: delivery starts this long after submission; meanwhile `undo_status` is `pending` and PATCH /mailbox/submissions/{id} `{"undo_status":"canceled"}` cancels it' },
  { name: 'MAILMUX_SEND_RETRY_HOURS', default: '48', description: 'How long 4xx replies and connection errors are retried (with backoff) before the message bounces' },
  { name: 'MAILMUX_SEND_RETRY_BASE_SECONDS', default: '60', description: 'First retry delay after a temporary failure; each further retry waits twice as long, at most an hour' },
  { name: 'MAILMUX_OUTBOUND_LEASE_SECONDS', default: '900', description: 'How long a worker holds queued recipients it took; a crashed process\'s work is retried after this (SQLite retries at the next start)' },
  { name: 'MAILMUX_OUTBOUND_MX_PORT', default: '25', description: 'Port of the recipient MX for direct delivery (tests point it at a loopback server)' },
  { name: 'MAILMUX_OUTBOUND_TIMEOUT_SECONDS', default: '120', description: 'Outbound SMTP: connection and per-reply timeout; a slower server counts as a temporary failure' },
  { name: 'MAILMUX_OUTBOUND_CONCURRENCY', default: '20', description: 'Outbound SMTP deliveries in flight per process' },
  { name: 'MAILMUX_OUTBOUND_DOMAIN_CONCURRENCY', default: '5', description: 'Outbound SMTP deliveries in flight per recipient domain (or provider) per process' },
  { name: 'MAILMUX_MAX_PROVIDERS_PER_TEAM', default: '50', description: 'Sending accounts (providers) a team may hold (409 limit_exceeded beyond)' },
  { name: 'MAILMUX_CHANGE_RETENTION_DAYS', default: '30', description: 'Days of change log kept for `/changes` and `query-changes`; an older state gets `sync_required` (refetch). The newest change of each resource is always kept' },
  { name: 'MAILMUX_RSPAMD_URL', default: '(unset: built-in score only)', description: 'rspamd normal worker, e.g. http://127.0.0.1:11333; its /checkv2 score and action replace the built-in score' },
];

/**
 * Inspection threads by default. Posting a message and its parse between threads costs about as
 * much as the event loop saves (measured on 2 cores: 0.5-0.7 ms more CPU a message for 0.1-0.2 ms
 * off the event loop, no more messages a second), so a machine with two cores keeps it on the
 * event loop; with more cores the spare ones take it.
 */
export function defaultInspectWorkers(cores: number): number {
  return cores <= 2 ? 0 : Math.min(4, cores - 1);
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
  return value;
}

/** A non-negative decimal number (thresholds, which may be fractional). */
function num(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got "${raw}"`);
  return value;
}

function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new Error(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`);
  return raw as T;
}

/** Both TLS files or neither: a certificate without its key (or the reverse) is a configuration mistake, not a fallback. */
function tlsFiles(env: NodeJS.ProcessEnv): { cert: string | null; key: string | null } {
  const cert = env.MAILMUX_TLS_CERT_FILE || null;
  const key = env.MAILMUX_TLS_KEY_FILE || null;
  if ((cert === null) !== (key === null)) throw new Error('MAILMUX_TLS_CERT_FILE and MAILMUX_TLS_KEY_FILE must be set together');
  return { cert: cert && resolve(cert), key: key && resolve(key) };
}

/** A positive integer: 0 would make the limit refuse everything. */
function positive(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = int(env, name, fallback);
  if (value === 0) throw new Error(`${name} must be at least 1`);
  return value;
}

function systemHostname(): string {
  const name = hostname().toLowerCase();
  return name.length > 0 ? name : 'localhost';
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const listenHost = env.MAILMUX_LISTEN_HOST || '127.0.0.1';
  const httpPort = int(env, 'MAILMUX_HTTP_PORT', 8080);
  const urlHost = listenHost === '0.0.0.0' || listenHost === '::' ? 'localhost' : listenHost;
  const defaultDomain = (env.MAILMUX_DEFAULT_DOMAIN || 'mailmux.localhost').toLowerCase();
  const tls = tlsFiles(env);
  return {
    dataDir: resolve(env.MAILMUX_DATA_DIR || './data'),
    databaseUrl: env.MAILMUX_DATABASE_URL || null,
    listenHost,
    httpPort,
    smtpPort: int(env, 'MAILMUX_SMTP_PORT', 2525),
    submissionPort: int(env, 'MAILMUX_SUBMISSION_PORT', 2587),
    submissionsPort: int(env, 'MAILMUX_SUBMISSIONS_PORT', 2465),
    submissionAllowInsecureAuth: oneOf(env, 'MAILMUX_SUBMISSION_ALLOW_INSECURE_AUTH', ['true', 'false'] as const, 'false') === 'true',
    imapPort: int(env, 'MAILMUX_IMAP_PORT', 1143),
    imapsPort: int(env, 'MAILMUX_IMAPS_PORT', 1993),
    hostname: (env.MAILMUX_HOSTNAME || systemHostname()).toLowerCase(),
    publicUrl: (env.MAILMUX_PUBLIC_URL || `http://${urlHost}:${httpPort}`).replace(/\/+$/, ''),
    defaultDomain,
    dnsServers: (env.MAILMUX_DNS_SERVERS || '').split(',').map((s) => s.trim()).filter(Boolean),
    logLevel: env.MAILMUX_LOG_LEVEL || 'info',
    rateLimits: {
      management: int(env, 'MAILMUX_RATE_LIMIT_MANAGEMENT', 600),
      mailbox: int(env, 'MAILMUX_RATE_LIMIT_MAILBOX', 1800),
      sending: int(env, 'MAILMUX_RATE_LIMIT_SENDING', 1800),
      unauthenticated: int(env, 'MAILMUX_RATE_LIMIT_UNAUTHENTICATED', 300),
      windowSeconds: Math.max(1, int(env, 'MAILMUX_RATE_LIMIT_WINDOW_SECONDS', 60)),
    },
    teamLimits: {
      domains: int(env, 'MAILMUX_MAX_DOMAINS_PER_TEAM', 100),
      mailboxes: int(env, 'MAILMUX_MAX_MAILBOXES_PER_TEAM', 1000),
      keys: int(env, 'MAILMUX_MAX_KEYS_PER_TEAM', 2000),
    },
    bodyLimitBytes: int(env, 'MAILMUX_BODY_LIMIT_BYTES', 1048576),
    verificationPrefix: 'mailmux',
    smtp: {
      maxMessageBytes: positive(env, 'MAILMUX_SMTP_MAX_MESSAGE_BYTES', 26214400),
      maxRecipients: positive(env, 'MAILMUX_SMTP_MAX_RECIPIENTS', 100),
      maxCommands: positive(env, 'MAILMUX_SMTP_MAX_COMMANDS', 1000),
      maxConnections: positive(env, 'MAILMUX_SMTP_MAX_CONNECTIONS', 100),
      idleTimeoutSeconds: positive(env, 'MAILMUX_SMTP_IDLE_TIMEOUT_SECONDS', 300),
      quotaReply: oneOf(env, 'MAILMUX_SMTP_QUOTA_REPLY', ['temporary', 'permanent'] as const, 'temporary'),
      inspectWorkers: int(env, 'MAILMUX_SMTP_INSPECT_WORKERS', defaultInspectWorkers(availableParallelism())),
    },
    sqliteWriterThread: oneOf(env, 'MAILMUX_SQLITE_WRITER_THREAD', ['true', 'false'] as const, 'true') === 'true',
    sqliteVfs: oneOf(env, 'MAILMUX_SQLITE_VFS', ['mailmux', 'unix'] as const, 'mailmux'),
    tlsCertFile: tls.cert,
    tlsKeyFile: tls.key,
    spamThreshold: num(env, 'MAILMUX_SPAM_THRESHOLD', 5),
    rspamdUrl: (env.MAILMUX_RSPAMD_URL || '').replace(/\/+$/, '') || null,
    changeRetentionDays: positive(env, 'MAILMUX_CHANGE_RETENTION_DAYS', 30),
    webhooks: {
      allowPrivate: oneOf(env, 'MAILMUX_WEBHOOK_ALLOW_PRIVATE', ['true', 'false'] as const, 'false') === 'true',
      caFile: env.MAILMUX_WEBHOOK_CA_FILE ? resolve(env.MAILMUX_WEBHOOK_CA_FILE) : null,
      timeoutSeconds: positive(env, 'MAILMUX_WEBHOOK_TIMEOUT_SECONDS', 10),
      concurrency: positive(env, 'MAILMUX_WEBHOOK_CONCURRENCY', 16),
      maxPerTeam: int(env, 'MAILMUX_MAX_WEBHOOKS_PER_TEAM', 100),
    },
    outbound: {
      undoSeconds: int(env, 'MAILMUX_SEND_UNDO_SECONDS', 0),
      retryHours: num(env, 'MAILMUX_SEND_RETRY_HOURS', 48),
      retryBaseSeconds: positive(env, 'MAILMUX_SEND_RETRY_BASE_SECONDS', 60),
      leaseSeconds: positive(env, 'MAILMUX_OUTBOUND_LEASE_SECONDS', 900),
      mxPort: positive(env, 'MAILMUX_OUTBOUND_MX_PORT', 25),
      timeoutSeconds: positive(env, 'MAILMUX_OUTBOUND_TIMEOUT_SECONDS', 120),
      concurrency: positive(env, 'MAILMUX_OUTBOUND_CONCURRENCY', 20),
      domainConcurrency: positive(env, 'MAILMUX_OUTBOUND_DOMAIN_CONCURRENCY', 5),
      maxPerTeamProviders: int(env, 'MAILMUX_MAX_PROVIDERS_PER_TEAM', 50),
    },
    realtime: {
      maxStreamsPerKey: positive(env, 'MAILMUX_SSE_MAX_STREAMS_PER_KEY', 20),
      eventRetentionHours: positive(env, 'MAILMUX_EVENT_RETENTION_HOURS', 168),
      eventPollSeconds: positive(env, 'MAILMUX_EVENT_POLL_SECONDS', 2),
    },
  };
}

/** The README's configuration table, generated from CONFIG_VARS (a test keeps the README in step). */
export function describeConfig(): string {
  const rows = CONFIG_VARS.map((v) => `| \`${v.name}\` | ${v.default} | ${v.description} |`);
  return ['| variable | default | what it does |', '| --- | --- | --- |', ...rows].join('\n');
}
