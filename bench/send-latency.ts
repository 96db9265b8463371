// POST /mailbox/messages/send latency: 20 concurrent clients send small messages (about 2 KB of
// text to two recipients) from one mailbox; p50/p95/p99 from request to 200 (each 200 means the
// Sent copy, the submission and the queue rows are committed). The undo window is set to an hour so
// the delivery worker stays idle and the figure is the API path alone.
// Usage: node bench/send-latency.ts [--backend sqlite|postgres] [--requests 2000] [--clients 20]
import { arg, createBenchMailbox, load, rssMiB, startBenchServer, summary } from './lib.ts';

const backend = arg('backend', 'sqlite');
const total = Number(arg('requests', '2000'));
const clients = Number(arg('clients', '20'));
const WARMUP = 100;

async function main(): Promise<void> {
  const rig = await startBenchServer(backend, { MAILMUX_RATE_LIMIT_MAILBOX: '0', MAILMUX_SEND_UNDO_SECONDS: '3600' });
  const { server } = rig;
  try {
    const { key } = await createBenchMailbox(server, 'sender@bench.mailmux.test');
    const text = 'The quick brown fox jumps over the lazy dog. '.repeat(45);
    const send = async (i: number): Promise<void> => {
      const res = await fetch(`${server.httpUrl}/api/v1/mailbox/messages/send`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ to: [{ email: `customer${i % 50}@example.org` }], cc: [{ email: 'team@example.org' }], subject: `Order ${i}`, text_body: text }),
      });
      if (res.status !== 200) throw new Error(`send ${i}: ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
    };
    await load(WARMUP, clients, send);
    const t0 = performance.now();
    const lat = await load(total, clients, (i) => send(WARMUP + i));
    const seconds = (performance.now() - t0) / 1000;
    const s = summary(lat);
    console.log(`backend ${backend}: ${total} sends (after ${WARMUP} warm-up), ${clients} concurrent clients, ~2 KB text, 2 recipients`);
    console.log(`p50 ${s.p50} ms, p95 ${s.p95} ms, p99 ${s.p99} ms, max ${s.max} ms; ${Math.round(total / seconds)} sends/s; server RSS ${rssMiB(server.child.pid!)} MiB`);
  } finally {
    await rig.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
