// Outbound throughput: N messages of about 10 KB are queued through outbound.submit (the Sent copy,
// submission, queue and log rows), then one outbound worker with 20 deliveries in flight drains
// the queue to a loopback SMTP sink found through a loopback DNS server (MX + A), DKIM-signing each
// message. messages/s = N / time from the worker's start until every outcome is recorded.
// The sink is a minimal SMTP responder (no greeting pause: smtp-server waits 100 ms before its
// greeting to catch early talkers, which would make this measure the sink, not Mailmux).
// Usage: node bench/outbound.ts [--backend sqlite|postgres] [--messages 2000] [--parallel 20]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config/config.ts';
import { openServices } from '../src/app/app.ts';
import { silentLogger } from '../src/services/context.ts';
import { OutboundWorker } from '../src/workers/outbound.ts';
import { LoopbackDns } from '../test/helpers/dns-server.ts';
import net from 'node:net';
import { arg, benchDatabase, benchMessage, summary } from './lib.ts';

const backend = arg('backend', 'sqlite');
const total = Number(arg('messages', '2000'));
const parallel = arg('parallel', '20');
const DOMAIN = 'bench.mailmux.test';

/** Answers every command at once and counts messages whose end of data it acknowledged. */
async function startSink(): Promise<{ port: number; received: { length: number }; stop(): Promise<void> }> {
  const received = { length: 0 };
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    let buf = '';
    let inData = false;
    socket.write('220 sink ESMTP\r\n');
    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      for (;;) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n');
          if (end < 0) return;
          buf = buf.slice(end + 5);
          inData = false;
          received.length++;
          socket.write('250 2.0.0 queued\r\n');
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const line = buf.slice(0, nl).toUpperCase();
        buf = buf.slice(nl + 2);
        if (line.startsWith('EHLO')) socket.write('250-sink\r\n250 8BITMIME\r\n');
        else if (line === 'DATA') {
          inData = true;
          // The dot-terminator search starts at the data, which begins after this line.
          buf = `\r\n${buf}`;
          socket.write('354 go ahead\r\n');
        } else if (line === 'QUIT') socket.end('221 bye\r\n');
        else socket.write('250 ok\r\n');
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, received, stop: () => new Promise((r) => server.close(() => r())) };
}

async function main(): Promise<void> {
  const dns = new LoopbackDns();
  const dnsAddress = await dns.start();
  const sink = await startSink();
  dns.zone.mx.set('sink.example', [{ exchange: 'mx.sink.example', priority: 10 }]);
  dns.zone.a.set('mx.sink.example', ['127.0.0.1']);
  const dataDir = mkdtempSync(join(tmpdir(), 'mailmux-bench-'));
  const db = await benchDatabase(backend);
  const config = loadConfig({
    MAILMUX_DATA_DIR: dataDir,
    ...(db.databaseUrl ? { MAILMUX_DATABASE_URL: db.databaseUrl } : {}),
    MAILMUX_DEFAULT_DOMAIN: DOMAIN,
    MAILMUX_HOSTNAME: 'mx.bench.test',
    MAILMUX_DNS_SERVERS: dnsAddress,
    MAILMUX_OUTBOUND_MX_PORT: String(sink.port),
    MAILMUX_OUTBOUND_CONCURRENCY: parallel,
    MAILMUX_OUTBOUND_DOMAIN_CONCURRENCY: parallel,
    MAILMUX_LOG_LEVEL: 'silent',
  });
  const { store, services } = await openServices(config, { log: silentLogger });
  const issued = await services.teams.bootstrap();
  await services.domains.ensureDefaultDomain();
  const { mailbox } = await services.mailboxes.create(issued!.teamId, { email: `sender@${DOMAIN}` });

  const submitLatency: number[] = [];
  const tq = performance.now();
  for (let i = 0; i < total; i++) {
    const raw = Buffer.from(benchMessage(i, `r${i % 100}@sink.example`).replace(/sender\d+@senders\.example/, mailbox.email), 'utf8');
    const t = performance.now();
    await services.outbound.submit({ mailboxId: mailbox.id, raw, envelopeFrom: mailbox.email, recipients: [`r${i % 100}@sink.example`], source: 'smtp' });
    submitLatency.push(performance.now() - t);
  }
  const queueSeconds = (performance.now() - tq) / 1000;
  const size = Buffer.byteLength(benchMessage(0, 'r0@sink.example'));

  const worker = new OutboundWorker(services);
  const t0 = performance.now();
  await worker.start();
  let lastReceived = 0;
  for (;;) {
    if (sink.received.length >= total && lastReceived === 0) lastReceived = performance.now();
    const sent = await store.deliveryLogs.listForTeam(issued!.teamId, { limit: 1, after: null, status: 'pending' });
    if (sent.length === 0 && sink.received.length >= total) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const t1 = performance.now();
  await worker.stop();
  const seconds = (t1 - t0) / 1000;
  console.log(JSON.stringify({
    backend,
    messages: total,
    size_bytes: size,
    parallel: Number(parallel),
    queue_submit_per_s: Math.round(total / queueSeconds),
    submit_ms: summary(submitLatency),
    delivered_to_sink_per_s: Math.round(total / ((lastReceived - t0) / 1000)),
    recorded_per_s: Math.round(total / seconds),
    sink_messages: sink.received.length,
  }));
  await store.close();
  await sink.stop();
  await dns.stop();
  await db.drop();
  rmSync(dataDir, { recursive: true, force: true });
}

await main();
