// SMTP test rig: an in-process Mailmux (test/helpers/app.ts) with the inbound SMTP listener on a
// free loopback port and a loopback DNS server for SPF/DKIM/DMARC records, plus a raw SMTP client
// for protocol-level cases (exact reply lines, broken sessions) and a nodemailer client.
import net from 'node:net';
import tls from 'node:tls';
import nodemailer, { type Transporter } from 'nodemailer';
import { startInboundSmtp, type InboundSmtp, type InboundSmtpOptions } from '../../src/protocols/smtp/inbound.ts';
import type { TlsMaterial } from '../../src/protocols/smtp/tls.ts';
import { loadTlsMaterial } from '../../src/protocols/smtp/tls.ts';
import type { IncomingLogRow, MessageRow } from '../../src/store/index.ts';
import { IncomingLogsService } from '../../src/services/mail/incoming-logs.ts';
import { startTestApp, type TestApp } from './app.ts';
import type { Backend } from './backends.ts';
import { DnsFixture } from './management.ts';

export interface SmtpRig {
  app: TestApp;
  dns: DnsFixture;
  smtp: InboundSmtp;
  port: number;
  /** Every incoming-log row the listener wrote, accepted and refused. */
  logs: RecordingLogs;
  close(): Promise<void>;
}

let sharedTls: Promise<TlsMaterial> | null = null;

/** One self-signed pair per test process: generating an RSA key per suite only costs time. */
function testTls(app: TestApp): Promise<TlsMaterial> {
  sharedTls ??= loadTlsMaterial(app.config);
  return sharedTls;
}

export async function startSmtpRig(backend: Backend, env: Record<string, string> = {}, opts: Omit<InboundSmtpOptions, 'port' | 'host'> = {}): Promise<SmtpRig> {
  const dns = new DnsFixture();
  const address = await dns.start();
  const app = await startTestApp(backend, { MAILMUX_DNS_SERVERS: address, ...env });
  const logs = new RecordingLogs(app.services);
  const smtp = await startInboundSmtp(app.services, { ...opts, host: '127.0.0.1', port: 0, tls: opts.tls ?? (await testTls(app)), deps: { logs, ...opts.deps } });
  return {
    app,
    dns,
    smtp,
    port: smtp.port,
    logs,
    async close() {
      await smtp.close();
      await app.close();
      await dns.stop();
    },
  };
}

/** Publishes TXT records (SPF, DKIM keys, DMARC policies) on the loopback DNS server. */
export function publishTxt(dns: DnsFixture, name: string, value: string): void {
  const list = dns.server.zone.txt.get(name) ?? [];
  list.push(value);
  dns.server.zone.txt.set(name, list);
}

export interface Reply {
  code: number;
  /** The full reply, lines joined with \n, without CRLF. */
  text: string;
  /** The last line. */
  last: string;
}

/** A raw SMTP client: one command, one reply; nothing hidden. */
export class SmtpClient {
  private readonly socket: net.Socket;
  private buffer = '';
  private waiting: ((r: Reply | null) => void) | null = null;
  private ready: Reply[] = [];
  private ended = false;
  readonly closed: Promise<void>;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.drain();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.ended = true;
        this.waiting?.(null);
        this.waiting = null;
        resolve();
      });
    });
    socket.on('error', () => undefined);
  }

  static async connect(port: number): Promise<{ client: SmtpClient; greeting: Reply }> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new SmtpClient(socket);
    const greeting = await client.reply();
    return { client, greeting };
  }

  private drain(): void {
    for (;;) {
      const lines = this.buffer.split('\r\n');
      const idx = lines.findIndex((l, i) => i < lines.length - 1 && /^\d{3} /.test(l));
      if (idx < 0) return;
      const replyLines = lines.slice(0, idx + 1);
      this.buffer = lines.slice(idx + 1).join('\r\n');
      const last = replyLines[replyLines.length - 1] ?? '';
      const reply = { code: Number(last.slice(0, 3)), text: replyLines.join('\n'), last };
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w(reply);
      } else this.ready.push(reply);
    }
  }

  /** The next reply; rejects when the server closed the connection first. */
  async reply(): Promise<Reply> {
    const queued = this.ready.shift();
    if (queued) return queued;
    if (this.ended) throw new Error('connection closed');
    const r = await new Promise<Reply | null>((resolve) => (this.waiting = resolve));
    if (!r) throw new Error('connection closed');
    return r;
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  async command(line: string): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  /** DATA, the dot-stuffed message and the final dot; returns the reply to the message. */
  async data(raw: Buffer | string): Promise<Reply> {
    const go = await this.command('DATA');
    if (go.code !== 354) return go;
    const text = (Buffer.isBuffer(raw) ? raw.toString('latin1') : raw).replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    this.write(Buffer.from(`${text}${text.endsWith('\r\n') ? '' : '\r\n'}.\r\n`, 'latin1'));
    return this.reply();
  }

  /** STARTTLS, then the TLS socket (the raw client is done after this). */
  async startTls(servername: string): Promise<tls.TLSSocket> {
    const go = await this.command('STARTTLS');
    if (go.code !== 220) throw new Error(`STARTTLS refused: ${go.text}`);
    this.socket.removeAllListeners('data');
    const secure = tls.connect({ socket: this.socket, rejectUnauthorized: false, servername });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    return secure;
  }

  async quit(): Promise<void> {
    if (!this.ended) {
      this.write('QUIT\r\n');
      this.socket.end();
    }
    await this.closed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Connects, says EHLO, and returns the client. */
export async function session(port: number, helo = 'client.example'): Promise<SmtpClient> {
  const { client } = await SmtpClient.connect(port);
  const ehlo = await client.command(`EHLO ${helo}`);
  if (ehlo.code !== 250) throw new Error(`EHLO failed: ${ehlo.text}`);
  return client;
}

/** A whole transaction over the raw client; returns every reply. */
export async function transact(port: number, from: string, to: string[], raw: Buffer | string, mailParams = ''): Promise<{ mail: Reply; rcpt: Reply[]; data: Reply | null }> {
  const client = await session(port);
  try {
    const mail = await client.command(`MAIL FROM:<${from}>${mailParams}`);
    const rcpt: Reply[] = [];
    for (const r of to) rcpt.push(await client.command(`RCPT TO:<${r}>`));
    const data = mail.code === 250 && rcpt.some((r) => r.code === 250) ? await client.data(raw) : null;
    return { mail, rcpt, data };
  } finally {
    await client.quit();
  }
}

/** nodemailer's SMTP client, as a real MTA would connect (STARTTLS when asked). */
export function mailer(port: number, tlsMode: 'none' | 'require' = 'none'): Transporter {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    ...(tlsMode === 'none' ? { ignoreTLS: true } : { requireTLS: true }),
    tls: { rejectUnauthorized: false },
    name: 'client.example',
  });
}

/** The messages stored for a mailbox, oldest first. */
export async function storedMessages(app: TestApp, mailboxId: string): Promise<MessageRow[]> {
  const rows = await app.services.store.messages.idsForMailbox(mailboxId, 1000);
  return [...rows].sort((a, b) => (a.received_at < b.received_at ? -1 : a.received_at > b.received_at ? 1 : 0));
}

/** The stored raw bytes of a message. */
export async function storedRaw(app: TestApp, row: MessageRow): Promise<string> {
  const raw = await app.services.store.blobs.get(row.blob_sha256);
  if (!raw) throw new Error(`blob ${row.blob_sha256} missing`);
  return raw.toString('utf8');
}

/** Role of the folder a message is in. */
export async function folderRoleOf(app: TestApp, row: MessageRow): Promise<string | null> {
  const ids = (await app.services.store.messages.folderIdsOf([row.id])).get(row.id) ?? [];
  const folder = ids[0] ? await app.services.store.folders.get(ids[0]) : undefined;
  return folder?.role ?? null;
}

/**
 * Records the incoming-log rows the listener writes, so tests can read back team-less (rejected)
 * rows by id. Accepted rows commit inside ingest's transaction, so they are read off its results.
 */
export class RecordingLogs extends IncomingLogsService {
  readonly accepted: IncomingLogRow[] = [];
  readonly refused: IncomingLogRow[] = [];
  constructor(services: ConstructorParameters<typeof IncomingLogsService>[0] & { ingest: { onCommitted(l: (r: { incomingLogs: IncomingLogRow[] }) => void): void } }) {
    super(services);
    services.ingest.onCommitted((r) => this.accepted.push(...r.incomingLogs));
  }
  override async recordRefused(...args: Parameters<IncomingLogsService['recordRefused']>): Promise<IncomingLogRow[]> {
    const rows = await super.recordRefused(...args);
    this.refused.push(...rows);
    return rows;
  }
}
