// A mailbox of N messages (default 100,000): messages list (limit 50) p50/p99 at 20 concurrent
// clients, `q=` search p95, count and thread list, and the server's RSS afterwards.
// Usage: node bench/mailbox-queries.ts [--backend sqlite|postgres] [--messages 100000] [--requests 2000] [--keep NAME]
//          [--only list,inbox,search,count,threads] [--client raw|http|fetch]
// PostgreSQL: MAILMUX_BENCH_DATABASE_URL (or MAILMUX_TEST_DATABASE_URL) names a database to fill.
// --keep NAME fills once and keeps the store (SQLite: /tmp/mailmux-bench-NAME-sqlite; PostgreSQL: schema
// bench_keep_NAME) for repeated runs; a later run with the same name skips the fill.
// The load generator shares the machine with the server, so it is made cheap: --client raw (the
// default) is a minimal HTTP/1.1 keep-alive client on plain sockets (one per concurrent client),
// run in a lean process of its own (bench/http-load.ts);
// `http` is node:http with a keep-alive agent, `fetch` is undici's fetch (the costliest). Each query
// also reports the server's CPU time per request (from /proc), which other load on the machine
// disturbs much less than latency, and the client's own CPU per request.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
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
  // The ingest writer thread first (it would keep this process alive), then the store.
  await services.ingest.close();
  await store.close();
  console.log(`filled ${total} messages in ${fillSeconds.toFixed(1)} s (${Math.round(total / fillSeconds)} msg/s through ingest, batch commits)`);
  return created.credential!.secret;
}

/** CPU time (user + system) a process has used, in ms, from /proc/PID/stat. */
function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

/** Runs a phase of GETs with `concurrency` in flight; reports latencies and the client's CPU time. */
interface Client {
  run(paths: string[]): Promise<number[]>;
  /** CPU time the load generator has used so far, in ms. */
  cpuMs(): number;
  close(): void;
}

/** `http` and `fetch`: the load runs in this process (worker w always uses connection w). */
function inProcessClient(get: (path: string) => Promise<number>, close: () => void): Client {
  return {
    run: (paths) =>
      load(paths.length, concurrency, async (i) => {
        const status = await get(paths[i]!);
        if (status !== 200) throw new Error(`${paths[i]}: ${status}`);
      }),
    cpuMs: () => {
      const c = process.cpuUsage();
      return (c.user + c.system) / 1000;
    },
    close,
  };
}

/** `raw`: bench/http-load.ts in a lean process of its own (see there why). */
async function rawClient(u: URL, key: string): Promise<Client> {
  const child = spawn(process.execPath, [new URL('./http-load.ts', import.meta.url).pathname], { stdio: ['pipe', 'pipe', 'inherit'] });
  const replies = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  child.stdin!.write(`${JSON.stringify({ host: u.hostname, port: Number(u.port), headers: `Authorization: Bearer ${key}\r\n`, concurrency })}\n`);
  return {
    async run(paths) {
      child.stdin!.write(`${JSON.stringify({ paths })}\n`);
      const line = await replies.next();
      if (line.done) throw new Error('the load generator exited');
      const reply = JSON.parse(line.value) as { lat: number[] } | { error: string };
      if ('error' in reply) throw new Error(reply.error);
      return reply.lat;
    },
    cpuMs: () => cpuMs(child.pid!),
    close: () => child.stdin!.end(),
  };
}

async function makeClient(baseUrl: string, key: string): Promise<Client> {
  const u = new URL(baseUrl);
  if (clientKind === 'fetch') {
    return inProcessClient(async (path) => {
      const r = await fetch(`${baseUrl}${path}`, { headers: { authorization: `Bearer ${key}` } });
      await r.arrayBuffer();
      return r.status;
    }, () => undefined);
  }
  if (clientKind === 'http') {
    const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
    return inProcessClient(
      (path) =>
        new Promise((resolve, reject) => {
          http
            .get({ host: u.hostname, port: u.port, path, agent, headers: { authorization: `Bearer ${key}` } }, (res) => {
              res.on('data', () => undefined);
              res.on('end', () => resolve(res.statusCode ?? 0));
            })
            .on('error', reject);
        }),
      () => agent.destroy(),
    );
  }
  return rawClient(u, key);
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
  let rss = 0;
  // The server and the load generator are stopped on every way out, a failed request included.
  try {
    const client = await makeClient(server.httpUrl, key);
    try {
      // Warm-up: every query first (a new server's first few thousand requests run slower code: V8
      // tiers functions up, compiled statements are made), then each again right before it is measured.
      const paths = (n: number, path: (i: number) => string, from = 0): string[] => Array.from({ length: n }, (_, i) => `/api/v1${path(i + from)}`);
      for (const [, short, , path] of queries) if (!wanted || wanted.has(short)) await client.run(paths(500, path, 7));
      for (const [name, short, n, path] of queries) {
        if (wanted && !wanted.has(short)) continue;
        await client.run(paths(200, path, 7));
        const todo = paths(n, path);
        const s0 = cpuMs(serverPid);
        const c0 = client.cpuMs();
        const lat = await client.run(todo);
        results.push({ name, s: summary(lat), serverCpu: (cpuMs(serverPid) - s0) / n, clientCpu: (client.cpuMs() - c0) / n });
      }
      rss = rssMiB(serverPid);
    } finally {
      client.close();
    }
  } finally {
    await server.stop();
  }

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
