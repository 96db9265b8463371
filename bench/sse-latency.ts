// Realtime latency: SMTP end-of-DATA (the client writes the final ".") to the message.received
// event on a connected SSE client, with 100 open streams (one per mailbox) while 20 senders
// deliver; then the server's RSS with 1,000 idle streams open.
// Usage: node bench/sse-latency.ts [--backend sqlite|postgres] [--messages 2000] [--senders 20] [--idle 1000] [--rate 0] [--warmup 200]
// --warmup N messages go first, unmeasured (a fresh process loads and compiles its mail code on
// the first deliveries; the figures are about a server that is running).
// --rate N paces the senders to N messages/s in total (0: each sender sends as fast as it gets its
// 250s, so latency then includes the ingest queue at saturation). Also reported: 250 -> event, the
// part that is event propagation (commit, tail, fan-out, socket).
import { request } from 'node:http';
import { arg, createBenchMailbox, benchMessage, rssMiB, SmtpClient, startBenchServer, summary } from './lib.ts';

const backend = arg('backend', 'sqlite');
const total = Number(arg('messages', '2000'));
const senders = Number(arg('senders', '20'));
const idle = Number(arg('idle', '1000'));
const rate = Number(arg('rate', '0'));
const warmup = Number(arg('warmup', '200'));
const MAILBOXES = 100;

/** Opens an SSE stream; calls onEvent with each data payload. Resolves once the stream is live. */
function stream(url: string, key: string, onEvent: (data: string) => void): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { authorization: `Bearer ${key}` } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`SSE ${res.statusCode}`));
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = /^data: (.*)$/m.exec(frame)?.[1];
          if (data) onEvent(data);
        }
      });
      resolve(() => req.destroy());
    });
    req.on('error', reject);
    req.end();
  });
}

async function main(): Promise<void> {
  const rig = await startBenchServer(backend, { MAILMUX_RATE_LIMIT_MANAGEMENT: '0', MAILMUX_RATE_LIMIT_MAILBOX: '0' });
  const { server, smtpPort } = rig;
  const boxes: { email: string; key: string }[] = [];
  for (let m = 0; m < MAILBOXES; m++) boxes.push(await createBenchMailbox(server, `agent${m}@bench.mailmux.test`));
  const eventsUrl = `${server.httpUrl}/api/v1/mailbox/events`;

  // 100 live streams, one per mailbox.
  const sentAt = new Map<number, number>();
  const acceptedAt = new Map<number, number>();
  const latencies: number[] = [];
  const afterAccept: number[] = [];
  let received = 0;
  let allIn: () => void = () => undefined;
  const done = new Promise<void>((r) => (allIn = r));
  const closers = await Promise.all(
    boxes.map((b) =>
      stream(eventsUrl, b.key, (data) => {
        const now = performance.now();
        const i = Number(/Bench message (\d+)/.exec(data)?.[1]);
        const t = sentAt.get(i);
        if (t !== undefined) latencies.push(now - t);
        const a = acceptedAt.get(i);
        if (a !== undefined) afterAccept.push(now - a);
        if (i >= warmup && ++received === total) allIn();
      }),
    ),
  );

  // Messages [0, warmup) warm the server up; [warmup, warmup + total) are measured.
  const payloads = Array.from({ length: warmup + total }, (_, i) => benchMessage(i, boxes[i % MAILBOXES]!.email));
  let next = 0;
  let t0 = performance.now();
  const phase = async (end: number, paced: boolean): Promise<void> => {
    const start = next;
    await Promise.all(
      Array.from({ length: senders }, async () => {
        const c = await SmtpClient.connect(smtpPort);
        await c.reply();
        await c.command('EHLO sender.bench.example', '250');
        for (;;) {
          const i = next++;
          if (i >= end) break;
          if (paced && rate > 0) {
            const due = t0 + ((i - start) * 1000) / rate;
            const wait = due - performance.now();
            if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          }
          await c.command(`MAIL FROM:<sender${i % 50}@senders.example>`, '250');
          await c.command(`RCPT TO:<${boxes[i % MAILBOXES]!.email}>`, '250');
          await c.data(payloads[i]!, () => {
            if (i >= warmup) sentAt.set(i, performance.now());
          });
          if (i >= warmup) acceptedAt.set(i, performance.now());
        }
        c.close();
      }),
    );
    next = end;
  };
  await phase(warmup, false);
  t0 = performance.now();
  await phase(warmup + total, true);
  const wall = (performance.now() - t0) / 1000;
  await Promise.race([done, new Promise((r) => setTimeout(r, 30_000))]);
  for (const close of closers) close();
  const s = summary(latencies);
  const p = summary(afterAccept);

  // Memory with idle streams: RSS before and after opening them (10 per mailbox key).
  await new Promise((r) => setTimeout(r, 1000));
  const before = rssMiB(server.child.pid!);
  const idleClosers: (() => void)[] = [];
  for (let k = 0; k < idle; k++) idleClosers.push(await stream(eventsUrl, boxes[k % MAILBOXES]!.key, () => undefined));
  await new Promise((r) => setTimeout(r, 2000));
  const withIdle = rssMiB(server.child.pid!);
  for (const close of idleClosers) close();

  console.log(`backend ${backend}: ${total} messages, ${senders} senders${rate > 0 ? ` paced to ${rate} msg/s` : ' unpaced'}, ${MAILBOXES} open streams; ${received}/${total} events received; ${Math.round(total / wall)} msg/s`);
  console.log(`end-of-DATA -> SSE event ms: p50 ${s.p50} p95 ${s.p95} p99 ${s.p99} max ${s.max}`);
  console.log(`250 reply -> SSE event ms (propagation): p50 ${p.p50} p95 ${p.p95} p99 ${p.p99} max ${p.max}`);
  console.log(`RSS: ${before} MiB before, ${withIdle} MiB with ${idle} idle streams (+${withIdle - before} MiB, ${Math.round(((withIdle - before) * 1024) / idle)} KiB/stream)`);
  await rig.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
