// Shared bench helpers: percentiles, a fixed-concurrency load loop, starting a Mailmux server
// process and reading its RSS. Benches measure; tests assert.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function summary(samples: number[]): { n: number; p50: number; p95: number; p99: number; max: number } {
  const s = [...samples].sort((a, b) => a - b);
  const r = (x: number): number => Math.round(x * 100) / 100;
  return { n: s.length, p50: r(percentile(s, 50)), p95: r(percentile(s, 95)), p99: r(percentile(s, 99)), max: r(s[s.length - 1] ?? NaN) };
}

/** Runs `total` calls of fn with `concurrency` in flight; returns per-call latencies in ms. */
export async function load(total: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<number[]> {
  const lat: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        const t = performance.now();
        await fn(i);
        lat.push(performance.now() - t);
      }
    }),
  );
  return lat;
}

export interface ServerProcess {
  child: ChildProcess;
  httpUrl: string;
  rootKey: string | null;
  /** What the server printed on start (ports, URLs). */
  banner: string;
  stop(): Promise<void>;
}

/**
 * Starts `node src/cli/main.ts serve` with env and waits for its banner. BENCH_NODE_FLAGS (space
 * separated) are given to that node process: V8 flags such as --trace-gc, which
 * NODE_OPTIONS does not accept, to compare runs with and without them.
 */
export async function startServer(env: Record<string, string>): Promise<ServerProcess> {
  const nodeFlags = process.env.BENCH_NODE_FLAGS?.split(' ').filter((f) => f !== '') ?? [];
  const child = spawn(process.execPath, [...nodeFlags, 'src/cli/main.ts', 'serve'], {
    cwd: new URL('..', import.meta.url).pathname,
    // Every listener on a free port unless the bench names one.
    env: { ...process.env, MAILMUX_LOG_LEVEL: 'warn', MAILMUX_HTTP_PORT: '0', MAILMUX_SMTP_PORT: '0', MAILMUX_SUBMISSION_PORT: '0', MAILMUX_SUBMISSIONS_PORT: '0', MAILMUX_IMAP_PORT: '0', MAILMUX_IMAPS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (/REST API\s+\S+/.test(out) && out.includes('Ports')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${out}`)));
  });
  const httpUrl = /REST API\s+(\S+)\/api\/v1/.exec(out)![1]!;
  const rootKey = /(smx_root_\w+)/.exec(out)?.[1] ?? null;
  return {
    child,
    httpUrl,
    rootKey,
    banner: out,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export interface BenchServer {
  server: ServerProcess;
  /** The inbound SMTP port the banner printed. */
  smtpPort: number;
  dataDir: string;
  /** The PostgreSQL URL (with its bench schema), or undefined on SQLite. */
  databaseUrl: string | undefined;
  /** Stops the server (if still running), the DNS server, and drops the data folder and database. */
  close(): Promise<void>;
}

/** bench/dns-process.ts in a child process. */
async function startDnsProcess(): Promise<{ address: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [new URL('./dns-process.ts', import.meta.url).pathname], { stdio: ['pipe', 'pipe', 'inherit'] });
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /dns (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`dns process exited ${code}`)));
  });
  return {
    address,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/**
 * The usual bench set-up: a loopback DNS server (in its own process) (answering the lookups a local resolver would), a
 * fresh data folder and database for `backend`, and `mailmux serve` on them with the default
 * domain bench.mailmux.test, plus `env`.
 */
export async function startBenchServer(backend: string, env: Record<string, string> = {}): Promise<BenchServer> {
  const dns = await startDnsProcess();
  const dnsAddr = dns.address;
  const dataDir = mkdtempSync(join(tmpdir(), 'mailmux-bench-'));
  const db = await benchDatabase(backend);
  const server = await startServer({
    MAILMUX_DATA_DIR: dataDir,
    MAILMUX_DEFAULT_DOMAIN: 'bench.mailmux.test',
    MAILMUX_DNS_SERVERS: dnsAddr,
    ...(db.databaseUrl ? { MAILMUX_DATABASE_URL: db.databaseUrl } : {}),
    ...env,
  });
  return {
    server,
    smtpPort: Number(/smtp (\d+)/.exec(server.banner)?.[1]),
    dataDir,
    databaseUrl: db.databaseUrl,
    async close() {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
      await dns.stop();
      await db.drop();
    },
  };
}

/** Creates a mailbox through the Management API; returns its address, id and key. */
export async function createBenchMailbox(server: ServerProcess, email: string): Promise<{ id: string; email: string; key: string }> {
  const r = await fetch(`${server.httpUrl}/api/v1/mailboxes`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.rootKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ email }),
  });
  if (r.status !== 201) throw new Error(`mailbox create: ${r.status} ${await r.text()}`);
  const body = (await r.json()) as { data: { mailbox: { id: string; email: string }; credential: { secret: string } } };
  return { id: body.data.mailbox.id, email: body.data.mailbox.email, key: body.data.credential.secret };
}

/**
 * CPU time (user + system) a process has used so far, in ms, or with `mainThread` that of its main
 * thread only (the event loop); NaN where /proc is missing (Linux only).
 */
export function cpuMs(pid: number, mainThread = false): number {
  try {
    const fields = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime, in clock ticks (USER_HZ: 100 on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

/** CPU time (ms) of each of a process's live threads, summed by thread name (libuv's pool, workers, V8 helpers). */
export function threadCpuMs(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
      const name = tid === String(pid) ? 'main' : readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      out.set(name, (out.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) * 10);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

/** Bytes a process has passed to write system calls so far (`wchar` of /proc/PID/io); NaN where missing. */
export function writtenBytes(pid: number): number {
  try {
    return Number(/wchar:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

/** Read and write system calls of a process so far (/proc/<pid>/io syscr, syscw; all its threads). */
export function ioCalls(pid: number): { reads: number; writes: number } {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    return { reads: Number(/syscr:\s+(\d+)/.exec(io)?.[1] ?? NaN), writes: Number(/syscw:\s+(\d+)/.exec(io)?.[1] ?? NaN) };
  } catch {
    return { reads: NaN, writes: NaN };
  }
}

export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

/**
 * The database a bench runs on: SQLite (no URL) or a fresh PostgreSQL schema in
 * MAILMUX_BENCH_DATABASE_URL (or MAILMUX_TEST_DATABASE_URL), dropped by drop().
 */
export async function benchDatabase(backend: string): Promise<{ databaseUrl: string | undefined; drop(): Promise<void> }> {
  if (backend !== 'postgres') return { databaseUrl: undefined, drop: async () => undefined };
  const url = process.env.MAILMUX_BENCH_DATABASE_URL ?? process.env.MAILMUX_TEST_DATABASE_URL;
  if (!url) throw new Error('set MAILMUX_BENCH_DATABASE_URL for the PostgreSQL run');
  const schema = `bench_${Date.now()}`;
  const admin = async (q: string): Promise<void> => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query(q);
    await c.end();
  };
  await admin(`CREATE SCHEMA ${schema}`);
  return {
    databaseUrl: `${url}${url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    drop: () => admin(`DROP SCHEMA ${schema} CASCADE`),
  };
}

/** A minimal SMTP client: one command at a time, waiting for each reply. */
export class SmtpClient {
  private readonly socket: net.Socket;
  private buffer = '';
  private waiting: ((line: string) => void) | null = null;

  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buffer += d;
      this.drain();
    });
  }

  static connect(port: number): Promise<SmtpClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new SmtpClient(s)));
      s.once('error', reject);
    });
  }

  private drain(): void {
    for (;;) {
      const nl = this.buffer.indexOf('\r\n');
      if (nl < 0 || !this.waiting) return;
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 2);
      if (/^\d{3}-/.test(line)) continue; // continuation of a multi-line reply
      const w = this.waiting;
      this.waiting = null;
      w(line);
    }
  }

  reply(): Promise<string> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.drain();
    });
  }

  async command(line: string, expect: string): Promise<void> {
    const r = this.reply();
    this.socket.write(`${line}\r\n`);
    const got = await r;
    if (!got.startsWith(expect)) throw new Error(`${line.split(' ')[0]}: ${got}`);
  }

  /** Sends the commands in one write (RFC 2920 PIPELINING), then checks their replies in order. */
  async pipelined(lines: string[], expects: string[]): Promise<void> {
    this.socket.write(lines.map((l) => `${l}\r\n`).join(''));
    for (let i = 0; i < lines.length; i++) {
      const got = await this.reply();
      if (!got.startsWith(expects[i]!)) throw new Error(`${lines[i]!.split(' ')[0]}: ${got}`);
    }
  }

  /**
   * The message after a pipelined DATA got its 354; onSent runs as the final "." is written. A
   * Buffer is sent as it is: the message already in its DATA form (dataBytes).
   */
  async body(message: string | Buffer, onSent?: () => void): Promise<void> {
    const r = this.reply();
    this.socket.write(typeof message === 'string' ? dataBytes(message) : message);
    onSent?.();
    const got = await r;
    if (!got.startsWith('250')) throw new Error(`end of DATA: ${got}`);
  }

  /** Sends the message; onSent runs as the final "." is written (end of DATA). */
  async data(message: string | Buffer, onSent?: () => void): Promise<void> {
    await this.command('DATA', '354');
    await this.body(message, onSent);
  }

  close(): void {
    this.socket.end('QUIT\r\n');
  }
}

/**
 * A message as DATA sends it: dot-stuffed, ended by CRLF "." CRLF. Senders make it once per message
 * before the clock starts, as an MTA sends a queued file, so the sending side costs little CPU on
 * the machine the server shares.
 */
export function dataBytes(message: string): Buffer {
  return Buffer.from(`${message.replace(/^\./gm, '..')}\r\n.\r\n`);
}

export function benchMessage(i: number, to: string): string {
  const line = `Line of the message body number ${i}, padded to make a realistic ten kilobyte message.`;
  const body = Array.from({ length: 110 }, () => line).join('\r\n');
  return [
    `From: Sender ${i % 50} <sender${i % 50}@senders.example>`,
    `To: ${to}`,
    `Subject: Bench message ${i}`,
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: <bench-${i}-${Date.now()}@senders.example>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    body,
  ].join('\r\n');
}

