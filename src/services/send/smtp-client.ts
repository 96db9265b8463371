// A small SMTP client for outbound delivery: one message per session, per-recipient RCPT replies,
// STARTTLS (required, opportunistic or off), AUTH PLAIN/LOGIN, a timeout on every step, and — the
// reason it is ours rather than nodemailer's smtp-connection — it knows exactly whether the
// end-of-data dot was written: a connection lost before it is a plain temporary failure (safe to
// retry or fail over), after it the acceptance is uncertain and the message must not be resent.
import net from 'node:net';
import tls from 'node:tls';

export interface SmtpTarget {
  host: string;
  port: number;
  /** implicit: TLS from the first byte; starttls: required; opportunistic: when offered; none. */
  security: 'implicit' | 'starttls' | 'opportunistic' | 'none';
  /** Verify the server certificate (relays); direct MX delivery is opportunistic and does not. */
  verifyCertificate: boolean;
  auth?: { user: string; pass: string } | null;
  /** Our EHLO name. */
  heloName: string;
  timeoutMs: number;
}

export interface RecipientReply {
  email: string;
  code: number;
  reply: string;
}

export type SmtpOutcome =
  /** The message was accepted for `accepted`; the others were refused at RCPT. */
  | { kind: 'sent'; reply: string; code: number; accepted: RecipientReply[]; refused: RecipientReply[] }
  /** Nothing was accepted: a reply (code) or a connection failure (code null) before the data ended. */
  | { kind: 'failed'; temporary: boolean; reply: string; code: number | null; stage: string; refused: RecipientReply[] }
  /** The data was sent but no final reply came: the server may or may not have taken the message. */
  | { kind: 'uncertain'; reply: string };

class SmtpError extends Error {
  readonly code: number | null;
  constructor(message: string, code: number | null) {
    super(message);
    this.code = code;
  }
}

/** Reply lines kept per reply (a hostile server could send endless continuation lines). */
const MAX_REPLY_LINES = 100;
const MAX_LINE_BYTES = 4096;

class Session {
  private socket: net.Socket | tls.TLSSocket;
  private buffer = '';
  private lines: string[] = [];
  private waiter: { resolve: (r: { code: number; text: string }) => void; reject: (e: Error) => void } | null = null;
  private ready: { code: number; text: string }[] = [];
  private failure: Error | null = null;
  private readonly timeoutMs: number;

  constructor(socket: net.Socket | tls.TLSSocket, timeoutMs: number) {
    this.socket = socket;
    this.timeoutMs = timeoutMs;
    this.attach(socket);
  }

  private attach(socket: net.Socket | tls.TLSSocket): void {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.fail(new SmtpError(`connection error: ${(err as NodeJS.ErrnoException).code ?? err.message}`, null)));
    socket.on('close', () => this.fail(new SmtpError('connection closed by the server', null)));
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    if (this.buffer.length > MAX_LINE_BYTES * 4 && !this.buffer.includes('\n')) {
      this.fail(new SmtpError('reply line too long', null));
      return;
    }
    let i: number;
    while ((i = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, i).replace(/\r$/, '');
      this.buffer = this.buffer.slice(i + 1);
      if (this.lines.length < MAX_REPLY_LINES) this.lines.push(line.slice(0, MAX_LINE_BYTES));
      if (!/^\d{3}-/.test(line)) {
        const code = Number(line.slice(0, 3));
        const text = this.lines.join('\n');
        this.lines = [];
        const reply = { code: Number.isInteger(code) ? code : 0, text };
        if (this.waiter) {
          const w = this.waiter;
          this.waiter = null;
          w.resolve(reply);
        } else this.ready.push(reply);
      }
    }
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.reject(err);
    }
  }

  read(): Promise<{ code: number; text: string }> {
    const next = this.ready.shift();
    if (next) return Promise.resolve(next);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new SmtpError(`no reply within ${Math.round(this.timeoutMs / 1000)} s`, null));
        this.socket.destroy();
      }, this.timeoutMs);
      this.waiter = {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  /** Writes and resolves once the bytes are handed to the kernel. */
  write(data: string | Buffer): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.socket.write(data, (err) => (err ? reject(new SmtpError(`write failed: ${err.message}`, null)) : resolve()));
    });
  }

  async command(line: string): Promise<{ code: number; text: string }> {
    await this.write(`${line}\r\n`);
    return this.read();
  }

  async upgrade(servername: string, verify: boolean): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('error');
    plain.removeAllListeners('close');
    const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect({ socket: plain, servername: net.isIP(servername) ? undefined : servername, rejectUnauthorized: verify, minVersion: 'TLSv1.2' } as tls.ConnectionOptions, () => resolve(s));
      const timer = setTimeout(() => reject(new SmtpError('TLS handshake timed out', null)), this.timeoutMs);
      s.once('secureConnect', () => clearTimeout(timer));
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(new SmtpError(`TLS failed: ${err.message}`, null));
      });
    });
    this.socket = secure;
    this.attach(secure);
  }

  close(): void {
    this.socket.destroy();
  }

  async quit(): Promise<void> {
    try {
      await this.write('QUIT\r\n');
      await Promise.race([this.read(), new Promise((r) => setTimeout(r, 1000))]);
    } catch {
      // the session is over either way
    }
    this.close();
  }
}

async function open(target: SmtpTarget): Promise<Session> {
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const options = { host: target.host, port: target.port };
    const s = target.security === 'implicit'
      ? tls.connect({ ...options, servername: net.isIP(target.host) ? undefined : target.host, rejectUnauthorized: target.verifyCertificate } as tls.ConnectionOptions)
      : net.connect(options);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new SmtpError(`connection to ${target.host}:${target.port} timed out`, null));
    }, target.timeoutMs);
    s.once(target.security === 'implicit' ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      // Commands are small writes each awaiting a reply: no Nagle delay.
      s.setNoDelay(true);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(new SmtpError(`cannot connect to ${target.host}:${target.port}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, null));
    });
  });
  return new Session(socket, target.timeoutMs);
}

function expect(r: { code: number; text: string }, stage: string, ok: (code: number) => boolean): void {
  if (!ok(r.code)) throw new SmtpError(`${stage}: ${r.text}`, r.code);
}

/** Greeting, EHLO (HELO fallback), STARTTLS and AUTH; returns the EHLO keywords. */
async function handshake(s: Session, target: SmtpTarget): Promise<void> {
  expect(await s.read(), 'greeting', (c) => c === 220);
  let ehlo = await s.command(`EHLO ${target.heloName}`);
  if (ehlo.code !== 250) {
    expect(await s.command(`HELO ${target.heloName}`), 'HELO', (c) => c === 250);
    ehlo = { code: 250, text: '' };
  }
  const keywords = (text: string): string[] => text.split('\n').map((l) => l.slice(4).trim().toUpperCase());
  let caps = keywords(ehlo.text);
  const offersTls = caps.some((c) => c === 'STARTTLS');
  if (target.security === 'starttls' || (target.security === 'opportunistic' && offersTls)) {
    if (!offersTls) throw new SmtpError('the server does not offer STARTTLS', null);
    expect(await s.command('STARTTLS'), 'STARTTLS', (c) => c === 220);
    await s.upgrade(target.host, target.verifyCertificate);
    const again = await s.command(`EHLO ${target.heloName}`);
    expect(again, 'EHLO', (c) => c === 250);
    caps = keywords(again.text);
  }
  if (target.auth) {
    const auth = caps.find((c) => c.startsWith('AUTH'))?.split(/[ =]/).slice(1) ?? [];
    if (auth.includes('PLAIN') || !auth.includes('LOGIN')) {
      const token = Buffer.from(`\0${target.auth.user}\0${target.auth.pass}`, 'utf8').toString('base64');
      expect(await s.command(`AUTH PLAIN ${token}`), 'AUTH', (c) => c === 235);
    } else {
      expect(await s.command('AUTH LOGIN'), 'AUTH', (c) => c === 334);
      expect(await s.command(Buffer.from(target.auth.user, 'utf8').toString('base64')), 'AUTH', (c) => c === 334);
      expect(await s.command(Buffer.from(target.auth.pass, 'utf8').toString('base64')), 'AUTH', (c) => c === 235);
    }
  }
}

/** The message with CRLF line ends, dot-stuffed, ending in CRLF.CRLF. */
export function dataOf(message: Buffer): Buffer {
  const text = message.toString('latin1').replace(/\r?\n/g, '\r\n');
  const stuffed = text.replace(/^\./gm, '..');
  return Buffer.from(stuffed.endsWith('\r\n') ? `${stuffed}.\r\n` : `${stuffed}\r\n.\r\n`, 'latin1');
}

const firstLine = (text: string): string => text.replace(/\n/g, ' ').slice(0, 500);

/** Delivers one message to one server for the given recipients. */
export async function smtpSend(target: SmtpTarget, envelope: { from: string; to: string[] }, message: Buffer): Promise<SmtpOutcome> {
  let s: Session | null = null;
  let stage = 'connect';
  let dataSent = false;
  const accepted: RecipientReply[] = [];
  const refused: RecipientReply[] = [];
  try {
    s = await open(target);
    stage = 'handshake';
    await handshake(s, target);
    stage = 'MAIL FROM';
    expect(await s.command(`MAIL FROM:<${envelope.from}>`), 'MAIL FROM', (c) => c === 250);
    stage = 'RCPT TO';
    for (const to of envelope.to) {
      const r = await s.command(`RCPT TO:<${to}>`);
      (r.code === 250 || r.code === 251 ? accepted : refused).push({ email: to, code: r.code, reply: firstLine(r.text) });
    }
    if (accepted.length === 0) {
      await s.quit();
      // The least severe refusal decides: one temporary refusal keeps the message retryable.
      const temp = refused.find((r) => r.code >= 400 && r.code < 500);
      const worst = temp ?? refused[0]!;
      return { kind: 'failed', temporary: temp !== undefined, reply: worst.reply, code: worst.code, stage, refused };
    }
    stage = 'DATA';
    expect(await s.command('DATA'), 'DATA', (c) => c === 354);
    const data = dataOf(message);
    await s.write(data);
    dataSent = true;
    stage = 'end of data';
    const final = await s.read();
    if (final.code >= 200 && final.code < 300) {
      await s.quit();
      return { kind: 'sent', reply: firstLine(final.text), code: final.code, accepted, refused };
    }
    await s.quit();
    return { kind: 'failed', temporary: final.code >= 400 && final.code < 500, reply: firstLine(final.text), code: final.code, stage, refused };
  } catch (err) {
    s?.close();
    const e = err as SmtpError;
    const reply = firstLine(e.message);
    if (dataSent) return { kind: 'uncertain', reply: `no reply after the end of data (${reply})` };
    const code = e.code ?? null;
    return { kind: 'failed', temporary: code === null || (code >= 400 && code < 500), reply, code, stage, refused };
  }
}

/** Connects, says EHLO, negotiates TLS and authenticates, then quits: the provider test. */
export async function smtpProbe(target: SmtpTarget): Promise<{ ok: true } | { ok: false; reply: string; code: number | null }> {
  let s: Session | null = null;
  try {
    s = await open(target);
    await handshake(s, target);
    await s.quit();
    return { ok: true };
  } catch (err) {
    s?.close();
    const e = err as SmtpError;
    return { ok: false, reply: firstLine(e.message), code: e.code ?? null };
  }
}
