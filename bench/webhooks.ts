// Webhook delivery throughput: N sendmux.test events are queued in the outbox, then the delivery
// worker drains them to a loopback HTTPS receiver running in its own process; deliveries/s from
// the worker's start to the receiver's Nth request. Then latency: one event at a time, from the
// committing call to the request arriving at the receiver.
// Usage: node bench/webhooks.ts [--backend sqlite|postgres] [--events 5000] [--concurrency 16] [--webhooks 4]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { loadConfig } from '../src/config/config.ts';
import { openServices } from '../src/app/app.ts';
import { silentLogger } from '../src/services/context.ts';
import { WebhookWorker } from '../src/workers/webhooks.ts';
import { WebhookReceiver } from '../test/helpers/webhook-receiver.ts';
import { arg, benchDatabase, summary } from './lib.ts';

/** The receiver process: prints its port and CA file, then one line per request ("r <ms since epoch>"). */
async function receiverMain(): Promise<void> {
  const r = new WebhookReceiver();
  await r.start();
  let seen = 0;
  const tick = setInterval(() => {
    if (r.requests.length === seen) return;
    const fresh = r.requests.slice(seen);
    seen = r.requests.length;
    // Only the count and the arrival times leave the process; bodies are dropped.
    process.stdout.write(fresh.map((q) => `r ${q.at}\n`).join(''));
    r.requests.length = 0;
    seen = 0;
  }, 2);
  process.stdout.write(`${JSON.stringify({ port: r.port, caFile: r.caFile })}\n`);
  process.stdin.on('end', () => {
    clearInterval(tick);
    void r.stop().then(() => process.exit(0));
  });
  process.stdin.resume();
}

async function main(): Promise<void> {
  const backend = arg('backend', 'sqlite');
  const total = Number(arg('events', '5000'));
  const concurrency = arg('concurrency', '16');
  const hooks = Number(arg('webhooks', '4'));

  const child = spawn(process.execPath, [new URL(import.meta.url).pathname, '--receiver'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const arrivals: number[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  const info = await new Promise<{ port: number; caFile: string }>((resolve) => {
    lines.on('line', (line) => {
      if (line.startsWith('{')) return resolve(JSON.parse(line) as { port: number; caFile: string });
      if (line.startsWith('r ')) {
        arrivals.push(Number(line.slice(2)));
        for (const w of waiters.filter((x) => arrivals.length >= x.n)) w.resolve();
      }
    });
  });
  const until = (n: number): Promise<void> => (arrivals.length >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve })));

  const dataDir = mkdtempSync(join(tmpdir(), 'mailmux-bench-'));
  const db = await benchDatabase(backend);
  const config = loadConfig({
    MAILMUX_DATA_DIR: dataDir,
    ...(db.databaseUrl ? { MAILMUX_DATABASE_URL: db.databaseUrl } : {}),
    MAILMUX_LOG_LEVEL: 'silent',
    MAILMUX_WEBHOOK_ALLOW_PRIVATE: 'true',
    MAILMUX_WEBHOOK_CA_FILE: info.caFile,
    MAILMUX_WEBHOOK_CONCURRENCY: concurrency,
  });
  const { store, services } = await openServices(config, { log: silentLogger });
  await services.events.start();
  const teamId = (await services.teams.bootstrap())!.teamId;
  const ids: string[] = [];
  for (let h = 0; h < hooks; h++) {
    ids.push((await services.webhooks.create(teamId, { url: `https://localhost:${info.port}/hook${h}`, event_types: ['sendmux.test'] })).id);
  }

  // Backlog: events committed first, then the worker drains the outbox.
  const q0 = performance.now();
  for (let i = 0; i < total; i++) await services.webhooks.test(teamId, ids[i % hooks]!);
  const queueMs = performance.now() - q0;
  const worker = new WebhookWorker(services);
  const t0 = Date.now();
  worker.start();
  await until(total);
  const drainMs = Date.now() - t0;
  await worker.idle();

  // Latency: one event at a time.
  const lat: number[] = [];
  for (let i = 0; i < 200; i++) {
    const before = arrivals.length;
    const t = Date.now();
    await services.webhooks.test(teamId, ids[0]!);
    await until(before + 1);
    lat.push(arrivals[before]! - t);
  }
  const attempts = await services.webhooks.deliveries(teamId, ids[0]!, { limit: 100 });
  const failures = attempts.items.filter((a) => a.result !== 'success').length;

  console.log(JSON.stringify({
    backend,
    events: total,
    webhooks: hooks,
    concurrency: Number(concurrency),
    queue_events_per_s: Math.round((total / queueMs) * 1000),
    deliveries_per_s: Math.round((total / drainMs) * 1000),
    drain_ms: drainMs,
    event_to_request_ms: summary(lat),
    failed_attempts_in_last_100: failures,
  }));

  await worker.stop();
  await services.events.stop();
  await store.close();
  await db.drop();
  rmSync(dataDir, { recursive: true, force: true });
  child.stdin!.end();
}

if (process.argv.includes('--receiver')) await receiverMain();
else await main();
