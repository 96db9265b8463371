// A mailbox of N messages (default 100,000): messages list (limit 50) p50/p99 at 20 concurrent
// clients, `q=` search p95, count and thread list, and the server's RSS afterwards.
// Usage: node bench/mailbox-queries.ts [--backend sqlite|postgres] [--messages 100000] [--requests 2000] [--keep NAME]
// PostgreSQL: MAILMUX_BENCH_DATABASE_URL (or MAILMUX_TEST_DATABASE_URL) names a database to fill.
// --keep NAME fills once and keeps the store (SQLite: /tmp/mailmux-bench-NAME; PostgreSQL: schema
// bench_keep_NAME) for repeated runs; a later run with the same name skips the fill.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

async function main(): Promise<void> {
  const kept = keep ? await keptDatabase(keep) : null;
  const dataDir = kept ? kept.dataDir : mkdtempSync(join(tmpdir(), 'mailmux-bench-'));
  const db = kept ? { databaseUrl: kept.databaseUrl, drop: async () => undefined } : await benchDatabase(backend);
  const databaseUrl = db.databaseUrl;
  const env = { MAILMUX_DATA_DIR: dataDir, MAILMUX_DEFAULT_DOMAIN: 'bench.mailmux.test', MAILMUX_HTTP_PORT: '0', MAILMUX_SMTP_PORT: '0', MAILMUX_SUBMISSION_PORT: '0', MAILMUX_SUBMISSIONS_PORT: '0', MAILMUX_RATE_LIMIT_MAILBOX: '0', ...(databaseUrl ? { MAILMUX_DATABASE_URL: databaseUrl } : {}) };

  const filled = kept && existsSync(kept.marker) ? (JSON.parse(readFileSync(kept.marker, 'utf8')) as { key: string; total: number }) : null;
  const key = filled ? filled.key : await fill(env);
  if (kept && !filled) writeFileSync(kept.marker, JSON.stringify({ key, total }));
  if (filled) console.log(`reusing the kept store ${keep} (${filled.total} messages)`);

  const server = await startServer(env);
  const get = async (path: string): Promise<void> => {
    const r = await fetch(`${server.httpUrl}/api/v1${path}`, { headers: { authorization: `Bearer ${key}` } });
    if (r.status !== 200) throw new Error(`${path}: ${r.status} ${await r.text()}`);
    await r.arrayBuffer();
  };
  await load(200, concurrency, (i) => get(`/mailbox/messages?limit=50&q=${WORDS[i % WORDS.length]}`)); // warm-up

  const results: Record<string, ReturnType<typeof summary>> = {};
  results['list limit=50'] = summary(await load(requests, concurrency, () => get('/mailbox/messages?limit=50')));
  results['list folder=inbox limit=50'] = summary(await load(requests, concurrency, () => get('/mailbox/messages?limit=50&folder_id=inbox')));
  results['q= search limit=50'] = summary(await load(requests, concurrency, (i) => get(`/mailbox/messages?limit=50&q=${WORDS[i % WORDS.length]}%20${WORDS[(i + 5) % WORDS.length]}`)));
  results['count'] = summary(await load(Math.min(requests, 500), concurrency, () => get('/mailbox/messages/count')));
  results['thread list limit=50'] = summary(await load(Math.min(requests, 500), concurrency, () => get('/mailbox/threads?limit=50')));
  const rss = rssMiB(server.child.pid!);
  await server.stop();

  console.log(`\nbackend ${backend}, ${total} messages, ${concurrency} concurrent clients (latency in ms)`);
  console.log('| query | n | p50 | p95 | p99 | max |\n| --- | --- | --- | --- | --- | --- |');
  for (const [name, s] of Object.entries(results)) console.log(`| ${name} | ${s.n} | ${s.p50} | ${s.p95} | ${s.p99} | ${s.max} |`);
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
