// Real SMTP peers on loopback for outbound tests: smtp-server instances acting as a remote MX or an
// authenticated relay, recording what they accepted and injecting faults the test scripts per
// connection (4xx/5xx at RCPT or end of data, a dropped connection mid-DATA or after it, a
// greeting slower than the client's timeout).
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';

export type Fault =
  | { at: 'rcpt'; code: number; message?: string }
  | { at: 'data'; code: number; message?: string }
  /** Destroys the connection at the first DATA chunk (the client is still sending). */
  | { at: 'drop-mid-data' }
  /** Reads the whole message, then closes without a reply (uncertain acceptance). */
  | { at: 'drop-after-data' }
  /** Delays the greeting by ms. */
  | { at: 'slow-greeting'; ms: number };

export interface Received {
  from: string;
  to: string[];
  raw: Buffer;
  user: string | null;
  /** True once the 250 reply to the end of data was written to the socket. */
  confirmed: boolean;
}

export class SmtpPeer {
  readonly received: Received[] = [];
  /** Faults applied to the next connections/transactions, in order (one per transaction). */
  readonly faults: Fault[] = [];
  connections = 0;
  /** While set, every end-of-data reply is held until release() (a server that takes its time). */
  holdReplies = false;
  /** Start holding replies once this many messages were confirmed. */
  holdAfter: number | null = null;
  private held: (() => void)[] = [];
  private server!: SMTPServer;
  port = 0;
  private readonly auth: { user: string; pass: string } | null;

  constructor(opts: { auth?: { user: string; pass: string } } = {}) {
    this.auth = opts.auth ?? null;
  }

  async start(): Promise<number> {
    this.server = new SMTPServer({
      secure: false,
      disabledCommands: this.auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
      authOptional: !this.auth,
      allowInsecureAuth: true,
      logger: false,
      // A real MX may look the client up; a loopback sink should not cost a DNS timeout per session.
      disableReverseLookup: true,
      size: 50 * 1024 * 1024,
      onConnect: (_session, cb) => {
        this.connections++;
        const f = this.faults[0];
        if (f?.at === 'slow-greeting') {
          this.faults.shift();
          setTimeout(() => cb(), f.ms);
          return;
        }
        cb();
      },
      onAuth: (auth, _session, cb) => {
        if (this.auth && auth.username === this.auth.user && auth.password === this.auth.pass) return cb(null, { user: auth.username });
        return cb(Object.assign(new Error('Authentication failed'), { responseCode: 535 }));
      },
      onRcptTo: (address, _session, cb) => {
        const f = this.faults[0];
        if (f?.at === 'rcpt') {
          // A scripted RCPT fault applies to one recipient.
          this.faults.shift();
          return cb(Object.assign(new Error(f.message ?? 'refused'), { responseCode: f.code }));
        }
        void address;
        cb();
      },
      onData: (stream, session: SMTPServerSession, cb) => {
        const f = this.faults[0];
        if (f?.at === 'drop-mid-data') {
          this.faults.shift();
          stream.pause();
          this.socketOf(session)?.destroy();
          return;
        }
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks);
          const entry: Received = {
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            raw,
            user: (session.user as string | undefined) ?? null,
            confirmed: false,
          };
          if (f?.at === 'data') {
            this.faults.shift();
            return cb(Object.assign(new Error(f.message ?? 'refused'), { responseCode: f.code }));
          }
          if (f?.at === 'drop-after-data') {
            this.faults.shift();
            this.received.push(entry);
            this.socketOf(session)?.destroy();
            return;
          }
          this.received.push(entry);
          const reply = (): void => {
            // Confirmed only if the client is still there to read the 250.
            const socket = this.socketOf(session) as { destroyed?: boolean } | undefined;
            if (!socket || socket.destroyed) return;
            entry.confirmed = true;
            cb(null, 'Queued');
          };
          if (this.holdAfter !== null && this.received.filter((m) => m.confirmed).length >= this.holdAfter) this.holdReplies = true;
          if (this.holdReplies) this.held.push(reply);
          else reply();
        });
      },
    });
    // A client killed mid-session (the kill -9 test) resets its socket: routine for an SMTP server,
    // and without a listener smtp-server would throw it.
    this.server.on('error', () => undefined);
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.server.address() as AddressInfo).port;
    return this.port;
  }

  /** Answers every held reply (to clients still connected) and stops holding. */
  release(): void {
    this.holdReplies = false;
    this.holdAfter = null;
    const held = this.held.splice(0);
    for (const r of held) r();
  }

  get heldCount(): number {
    return this.held.length;
  }

  private socketOf(session: SMTPServerSession): { destroy(): void } | undefined {
    // smtp-server keeps connections in a set; find the one of this session.
    const conns = (this.server as unknown as { connections: Set<{ session?: SMTPServerSession; _socket: { destroy(): void } }> }).connections;
    for (const c of conns) if (c.session === session) return c._socket;
    return undefined;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Waits until cond() holds, polling. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
