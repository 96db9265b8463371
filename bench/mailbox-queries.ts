// A mailbox of N messages (default 100,000): messages list (limit 50) p50/p99 at 20 concurrent
// clients, `q=` search p95, count and thread list, and the server's RSS afterwards.
// Usage: node bench/mailbox-queries.ts [--backend sqlite|postgres] [--messages 100000] [--requests 2000] [--keep NAME]
//          [--only list,inbox,search,count,threads] [--client raw|http|fetch]
// PostgreSQL: MAILMUX_BENCH_DATABASE_URL (or MAILMUX_TEST_DATABASE_URL) names a database to fill.
// --keep NAME fills once and keeps the store (SQLite: /tmp/mailmux-bench-NAME-sqlite; PostgreSQL: schema
// bench_keep_NAME) for repeated runs; a later run with the same name skips the fill.
// The load generator shares the machine with the server, so it is made cheap: --client raw (the
// default) is a minimal HTTP/1.1 keep-alive client on plain sockets (one per concurrent client);
// `http` is node:http with a keep-alive agent, `fetch` is undici's fetch (the costliest). Each query
// also reports the server's CPU time per request (from /proc), which other load on the machine
// disturbs much less than latency, and the client's own CPU per request.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.ts';
import { openServices } from '../src/app/app.ts';
import { silentLogger } from '../src/services/context.ts';
import pg from 'pg';
import { arg, benchDatabase, load, rssMiB, startServer, summary } from './lib.ts';

const backend = arg('backend', 'sqlite');
const total = Number(arg('messages', '100000'));
const requests = Number(arg('requests', '2000'));
const concurrency = Number(arg('concurrency', '20'));
const keep = arg('keep', '');
const only = arg('only', '');
const clientKind = arg('client', 'raw');

/** A kept store (--keep): a fixed data folder and PostgreSQL schema, never dropped. */
async function keptDatabase(name: string): Promise<{ dataDir: string; databaseUrl: string | undefined; marker: string }> {
  if (!/^\w+$/.test(name)) throw new Error('--keep takes letters, digits and _');
  const dataDir = join(tmpdir(), `mailmux-bench-${name}-${backend}`);
  mkdirSync(dataDir, { recursive: true });
  if (backend !== 'postgres') return { dataDir, databaseUrl: undefined, marker: join(dataDir, 'bench-mailbox.json') };
  const url = process.env.MAILMUX_BENCH_DATABASE_URL ?? process.env.MAILMUX_TEST_DATABASE_URL;
  if (!url) throw new Error('set MAILMUX_BENCH_DATABASE_URL for the PostgreSQL run');
  const schema = `bench_keep_${name}`;
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  await c.end();
  return { dataDir, databaseUrl: `${url}${url.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`, marker: join(dataDir, 'bench-mailbox.json') };
}

const WORDS = 'invoice meeting roadmap budget contract shipment refund password server deploy incident report quarterly review offer hiring travel visa lunch launch'.split(' ');
const SENDERS = Array.from({ length: 200 }, (_, i) => `sender${i}@domain${i % 40}.example`);

function message(i: number, to: string): Buffer {
  const w = (k: number): string => WORDS[(i * 7 + k * 13) % WORDS.length]!;
  const subject = `${i % 5 === 0 ? 'Re: ' : ''}${w(1)} ${w(2)} #${i % 3000}`;
  const body = Array.from({ length: 30 }, (_, k) => `Line ${k} about the ${w(k)} and the ${w(k + 3)} for order ${i}-${k}.`).join('\r\n');
  const date = new Date(Date.UTC(2026, 0, 1) + i * 60_000).toUTCString();
  return Buffer.from(
    `From: ${SENDERS[i % SENDERS.length]}\r\nTo: ${to}\r\nSubject: ${subject}\r\nDate: ${date}\r\nMessage-ID: <m${i}@bench.example>\r\n` +
      (i % 5 === 0 && i > 0 ? `In-Reply-To: <m${i - 5}@bench.example>\r\n` : '') +
      `Content-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n`,
  );
}

/** Fills a new mailbox through the one ingest path, in this process, before the server starts; returns its key. */
async function fill(env: Record<string, string>): Promise<string> {
  const config = loadConfig({ ...process.env, ...env });
  const { store, services } = await openServices(config, { log: silentLogger });
  await services.teams.bootstrap();
  await services.domains.ensureDefaultDomain();
  const teamId = await services.teams.defaultTeamId();
  const created = await services.mailboxes.create(teamId, { email: 'bench@bench.mailmux.test' });
  const mailboxId = created.mailbox.id;
  const t0 = performance.now();
  await load(total, 64, async (i) => {
    await services.ingest.deliver({ raw: message(i, 'bench@bench.mailmux.test'), targets: [{ mailboxId }], receivedAt: Date.UTC(2026, 0, 1) + i * 60_000 });
  });
  const fillSeconds = (performance.now() - t0) / 1000;
  await store.close();
  console.log(`filled ${total} messages in ${fillSeconds.toFixed(1)} s (${Math.round(total / fillSeconds)} msg/s through ingest, batch commits)`);
  return created.credential!.secret;
}

/**
 * One keep-alive HTTP/1.1 connection that sends a GET and reads the answer (status line,
 * Content-Length, body bytes counted, not kept): the least a load generator can do per request.
 */
class RawConnection {
  private readonly socket: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  private want: { resolve: (status: number) => void; reject: (err: Error) => void } | null = null;
  private status = 0;
  private bodyLeft = -1;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (err) => this.want?.reject(err));
    socket.on('close', () => this.want?.reject(new Error('connection closed')));
  }

  static open(host: string, port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, host, () => resolve(new RawConnection(s)));
      s.once('error', reject);
    });
  }

  private onData(d: Buffer): void {
    if (this.bodyLeft > 0) {
      const take = Math.min(this.bodyLeft, d.length);
      this.bodyLeft -= take;
      d = d.subarray(take);
      if (this.bodyLeft === 0) this.done();
      if (d.length === 0) return;
    }
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.buf.toString('latin1', 0, end);
    const m = /content-length:\s*(\d+)/i.exec(head);
    if (!m) return this.want?.reject(new Error(`no Content-Length: ${head.split('\r\n')[0]}`));
    this.status = Number(head.slice(9, 12));
    const rest = this.buf.subarray(end + 4);
    this.buf = Buffer.alloc(0);
    this.bodyLeft = Number(m[1]) - rest.length;
    if (this.bodyLeft <= 0) this.done();
  }

  private done(): void {
    this.bodyLeft = -1;
    const w = this.want;
    this.want = null;
    w?.resolve(this.status);
  }

  get(path: string, headers: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.want = { resolve, reject };
      this.socket.write(`GET ${path} HTTP/1.1\r\nHost: bench\r\n${headers}\r\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** CPU time (user + system) a process has used, in ms, from /proc/PID/stat. */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

/** A GET function for `concurrency` workers: worker w always uses connection w. */
async function makeClient(baseUrl: string, key: string): Promise<{ get: (path: string, worker: number) => Promise<void>; close(): void }> {
  const u = new URL(baseUrl);
  const check = (path: string, status: number): void => {
    if (status !== 200) throw new Error(`${path}: ${status}`);
  };
  if (clientKind === 'fetch') {
    return {
      get: async (path) => {
        const r = await fetch(`${baseUrl}/api/v1${path}`, { headers: { authorization: `Bearer ${key}` } });
        await r.arrayBuffer();
        check(path, r.status);
      },
      close: () => undefined,
    };
  }
  if (clientKind === 'http') {
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    return {
      get: (path) =>
        new Promise((resolve, reject) => {
          http
            .get({ host: u.hostname, port: u.port, path: `/api/v1${path}`, agent, headers: { authorization: `Bearer ${key}` } }, (res) => {
              res.on('data', () => undefined);
              res.on('end', () => {
                try {
                  check(path, res.statusCode ?? 0);
                  resolve();
                } catch (err) {
                  reject(err as Error);
                }
              });
            })
            .on('error', reject);
        }),
      close: () => agent.destroy(),
    };
  }
  const conns = await Promise.all(Array.from({ length: concurrency }, () => RawConnection.open(u.hostname, Number(u.port))));
  const headers = `Authorization: Bearer ${key}\r\n`;
  return {
    get: async (path, worker) => check(path, await conns[worker]!.get(`/api/v1${path}`, headers)),
    close: () => conns.forEach((c) => c.close()),
  };
}

/** `load` with the worker's index passed along (each worker keeps its own connection). */
async function loadOn(total: number, fn: (i: number, worker: number) => Promise<void>): Promise<number[]> {
  const lat: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        const t = performance.now();
        await fn(i, worker);
        lat.push(performance.now() - t);
      }
    }),
  );
  return lat;
}

async function main(): Promise<void> {
  const kept = keep ? await keptDatabase(keep) : null;
  const dataDir = kept ? kept.dataDir : mkdtempSync(join(tmpdir(), 'mailmux-bench-'));
  const db = kept ? { databaseUrl: kept.databaseUrl, drop: async () => undefined } : await benchDatabase(backend);
  const databaseUrl = db.databaseUrl;
  const env = { MAILMUX_DATA_DIR: dataDir, MAILMUX_DEFAULT_DOMAIN: 'bench.mailmux.test', MAILMUX_HTTP_PORT: '0', MAILMUX_SMTP_PORT: '0', MAILMUX_SUBMISSION_PORT: '0', MAILMUX_SUBMISSIONS_PORT: '0', MAILMUX_RATE_LIMIT_MAILBOX: '0', ...(databaseUrl ? { MAILMUX_DATABASE_URL: databaseUrl } : {}) };

  const filled = kept && existsSync(kept.marker) ? (JSON.parse(readFileSync(kept.marker, 'utf8')) as { key: string; total: number }) : null;
  const key = filled ? filled.key : await fill(env);
  if (kept && !filled) writeFileSync(kept.marker, JSON.stringify({ key, total }));
  if (filled) {
    console.log(`reusing the kept store ${keep} (${filled.total} messages)`);
    // Migrations the kept store has not had yet run here first: converting 100,000 messages can take
    // longer than the server is given to start.
    const t0 = performance.now();
    const { store } = await openServices(loadConfig({ ...process.env, ...env }), { log: silentLogger });
    await store.close();
    const seconds = (performance.now() - t0) / 1000;
    if (seconds > 2) console.log(`store opened (migrations) in ${seconds.toFixed(1)} s`);
  }

  const server = await startServer(env);
  const client = await makeClient(server.httpUrl, key);
  const serverPid = server.child.pid!;

  const queries: [name: string, key: string, n: number, path: (i: number) => string][] = [
    ['list limit=50', 'list', requests, () => '/mailbox/messages?limit=50'],
    ['list folder=inbox limit=50', 'inbox', requests, () => '/mailbox/messages?limit=50&folder_id=inbox'],
    ['q= search limit=50', 'search', requests, (i) => `/mailbox/messages?limit=50&q=${WORDS[i % WORDS.length]}%20${WORDS[(i + 5) % WORDS.length]}`],
    ['count', 'count', Math.min(requests, 500), () => '/mailbox/messages/count'],
    ['thread list limit=50', 'threads', Math.min(requests, 500), () => '/mailbox/threads?limit=50'],
  ];
  const wanted = only ? new Set(only.split(',')) : null;
  const results: { name: string; s: ReturnType<typeof summary>; serverCpu: number; clientCpu: number }[] = [];
  // Warm-up: every query first (a new server's first few thousand requests run slower code: V8
  // tiers functions up, compiled statements are made), then each again right before it is measured.
  for (const [, short, , path] of queries) if (!wanted || wanted.has(short)) await loadOn(500, (i, w) => client.get(path(i + 7), w));
  for (const [name, short, n, path] of queries) {
    if (wanted && !wanted.has(short)) continue;
    await loadOn(200, (i, w) => client.get(path(i + 7), w));
    const s0 = cpuMs(serverPid);
    const c0 = process.cpuUsage();
    const lat = await loadOn(n, (i, w) => client.get(path(i), w));
    const c = process.cpuUsage(c0);
    results.push({ name, s: summary(lat), serverCpu: (cpuMs(serverPid) - s0) / n, clientCpu: (c.user + c.system) / 1000 / n });
  }
  const rss = rssMiB(serverPid);
  client.close();
  await server.stop();

  console.log(`\nbackend ${backend}, ${total} messages, ${concurrency} concurrent clients (${clientKind} client), latency in ms; CPU ms per request`);
  console.log('| query | n | p50 | p95 | p99 | max | server CPU | client CPU |\n| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const { name, s, serverCpu, clientCpu } of results) console.log(`| ${name} | ${s.n} | ${s.p50} | ${s.p95} | ${s.p99} | ${s.max} | ${serverCpu.toFixed(2)} | ${clientCpu.toFixed(2)} |`);
  console.log(`server RSS after the run: ${rss} MiB`);

  if (!kept) {
    rmSync(dataDir, { recursive: true, force: true });
    await db.drop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
