// Receive throughput: 20 concurrent SMTP senders deliver 10,000 messages of about 10 KB to 100
// mailboxes; messages/s from the first connect to the last 250 (each 250 means stored durably).
// Usage: node bench/receive.ts [--backend sqlite|postgres] [--messages 10000] [--senders 20]
//   [--pipelining yes|no] [--reference yes|no] [--rounds 1]
// A loopback DNS server answers the SPF/DKIM/DMARC lookups (NXDOMAIN) as a local resolver would.
// --pipelining yes: each sender sends MAIL, RCPT and DATA in one packet and then reads the three
// replies (RFC 2920; Postfix's SMTP client does so whenever the server offers PIPELINING);
// no (the default): one command at a time, waiting for each reply.
// --reference yes: each round also runs the issue's reference, Postfix handing to Dovecot over LMTP
// (bench/reference-mta.ts; needs root and Debian's postfix, dovecot-core and dovecot-lmtpd), with
// the same messages and senders, and prints the ratio; the machine's speed drifts, so only
// figures measured side by side are compared. Rounds alternate which of the two goes first. It
// also runs the same senders once into Postfix's smtp-sink, which stores nothing (the ceiling).
import { readFileSync } from 'node:fs';
import { arg, cpuMs, ioCalls, summary, threadCpuMs, writtenBytes, createBenchMailbox, benchMessage as message, dataBytes, rssMiB, SmtpClient, startBenchServer } from './lib.ts';
import { referenceUnavailable, startReferenceMta, startSmtpSink } from './reference-mta.ts';

const backend = arg('backend', 'sqlite');
const total = Number(arg('messages', '10000'));
const senders = Number(arg('senders', '20'));
const pipelining = arg('pipelining', 'no') === 'yes';
const reference = arg('reference', 'no') === 'yes';
const rounds = Number(arg('rounds', '1'));
const MAILBOXES = 100;
/** Messages per SMTP connection before the sender reconnects (Postfix reuses a connection for up to 100). */
const MESSAGES_PER_CONNECTION = 100;
const addresses = Array.from({ length: MAILBOXES }, (_, m) => `agent${m}@bench.mailmux.test`);

interface Load {
  t0: number;
  last250: number;
  /** From the final "." to its 250, ms, for each message. */
  storeMs: number[];
}

/**
 * `senders` concurrent SMTP clients deliver `payloads` (message i to addresses[i % 100]) to the
 * server on `port`, each reusing its connection for up to 100 messages, as an MTA does. `atLast`
 * runs as the last 250 arrives, to read the server's counters then.
 */
async function deliver(port: number, payloads: Buffer[], atLast: () => void): Promise<Load> {
  let next = 0;
  let last250 = 0;
  const storeMs: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: senders }, async () => {
      for (let done = false; !done; ) {
        const c = await SmtpClient.connect(port);
        await c.reply();
        await c.command('EHLO sender.bench.example', '250');
        for (let k = 0; k < MESSAGES_PER_CONNECTION; k++) {
          const i = next++;
          if (i >= total) {
            done = true;
            break;
          }
          const mailFrom = `MAIL FROM:<sender${i % 50}@senders.example>`;
          const rcptTo = `RCPT TO:<${addresses[i % MAILBOXES]}>`;
          let dotAt = 0;
          const onSent = (): void => {
            dotAt = performance.now();
          };
          if (pipelining) {
            await c.pipelined([mailFrom, rcptTo, 'DATA'], ['250', '250', '354']);
            await c.body(payloads[i]!, onSent);
          } else {
            await c.command(mailFrom, '250');
            await c.command(rcptTo, '250');
            await c.data(payloads[i]!, onSent);
          }
          storeMs.push(performance.now() - dotAt);
          last250 = performance.now();
          if (next >= total) atLast();
        }
        c.close();
      }
    }),
  );
  return { t0, last250, storeMs };
}

/** Busy and total jiffies of the whole machine (/proc/stat), for the share of the cores a run used. */
function machineTicks(): { busy: number; all: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const all = f.reduce((a, b) => a + b, 0);
  return { busy: all - f[3]! - f[4]!, all }; // idle and iowait are not busy
}

function payloadsFor(): Buffer[] {
  return Array.from({ length: total }, (_, i) => dataBytes(message(i, addresses[i % MAILBOXES]!)));
}

const header = (): string => `${total} messages of ${Math.round(Buffer.byteLength(message(0, addresses[0]!)) / 1024)} KB, ${senders} concurrent senders${pipelining ? ' (pipelining)' : ''}, ${MAILBOXES} mailboxes`;

/** One Mailmux run; prints its figures and returns msg/s. */
async function runMailmux(): Promise<number> {
  const rig = await startBenchServer(backend, { MAILMUX_RATE_LIMIT_MANAGEMENT: '0' });
  const { server, smtpPort, dataDir, databaseUrl } = rig;
  for (const a of addresses) await createBenchMailbox(server, a);
  const payloads = payloadsFor();

  const pid = server.child.pid!;
  const cpu0 = cpuMs(pid);
  const main0 = cpuMs(pid, true);
  const written0 = writtenBytes(pid);
  const calls0 = ioCalls(pid);
  const threads0 = threadCpuMs(pid);
  const client0 = process.cpuUsage();
  const machine0 = machineTicks();
  let at: { cpu: number; main: number; written: number; calls: typeof calls0; threads: typeof threads0; client: NodeJS.CpuUsage; machine: { busy: number; all: number } } | undefined;
  const load = await deliver(smtpPort, payloads, () => {
    at = { cpu: cpuMs(pid), main: cpuMs(pid, true), written: writtenBytes(pid), calls: ioCalls(pid), threads: threadCpuMs(pid), client: process.cpuUsage(), machine: machineTicks() };
  });
  const last = at!;
  const seconds = (load.last250 - load.t0) / 1000;
  const rss = rssMiB(pid);

  // Every 250 must be a stored message: count them in the store.
  let stored = 0;
  await server.stop();
  const { loadConfig } = await import('../src/config/config.ts');
  const { openServices } = await import('../src/app/app.ts');
  const { silentLogger } = await import('../src/services/context.ts');
  const { store } = await openServices(loadConfig({ MAILMUX_DATA_DIR: dataDir, MAILMUX_DEFAULT_DOMAIN: 'bench.mailmux.test', ...(databaseUrl ? { MAILMUX_DATABASE_URL: databaseUrl } : {}) }), { log: silentLogger });
  for (const row of await store.mailboxes.listForTeam((await store.teams.first())!.id, { limit: 1000, after: null, includeDeleted: false })) {
    stored += await store.messageQuery.count({ mailboxId: row.id });
  }
  await store.close();

  const rate = total / seconds;
  console.log(`Mailmux, backend ${backend}: ${header()}`);
  console.log(`first connect to last 250: ${seconds.toFixed(2)} s = ${Math.round(rate)} msg/s; stored ${stored}/${total}; server RSS ${rss} MiB`);
  // CPU per message moves less than msg/s when other work shares the cores.
  console.log(`server CPU per message: ${((last.cpu - cpu0) / total).toFixed(2)} ms (main thread ${((last.main - main0) / total).toFixed(2)} ms); written (WAL, checkpoints, files, sockets): ${((last.written - written0) / total / 1024).toFixed(1)} KiB per message, in ${((last.calls.writes - calls0.writes) / total).toFixed(1)} write calls (${((last.calls.reads - calls0.reads) / total).toFixed(1)} read calls)`);
  const perThread = [...last.threads]
    .map(([name, ms]) => [name, (ms - (threads0.get(name) ?? 0)) / total] as const)
    .filter(([, ms]) => ms >= 0.01)
    .sort((a, b) => b[1] - a[1]);
  console.log(`  by thread: ${perThread.map(([name, ms]) => `${name} ${ms.toFixed(2)}`).join(', ')} (WorkerThread: the ingest writer, its flusher, checkpoints and, with more than two cores, inspection; V8Worker: garbage collection)`);
  // The senders share the machine's cores with the server (smtp-source, the reference's client, is C).
  const clientMs = (last.client.user + last.client.system - client0.user - client0.system) / 1000;
  console.log(`the senders (this process) used ${(clientMs / total).toFixed(2)} ms of CPU per message; the machine's cores were ${busyPercent(machine0, last.machine)} % busy`);
  const { p50, p99 } = summary(load.storeMs);
  console.log(`final "." to its 250: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`);
  await rig.close();
  if (stored !== total) throw new Error(`${total - stored} messages answered 250 are not stored`);
  return rate;
}

function busyPercent(a: { busy: number; all: number }, b: { busy: number; all: number }): number {
  return Math.round((100 * (b.busy - a.busy)) / (b.all - a.all));
}

/**
 * One run of the reference: the same senders and messages into Postfix, which hands them to
 * Dovecot over LMTP. Stored = the last message's file in a Maildir. Returns stored msg/s.
 */
async function runReference(): Promise<number> {
  const mta = await startReferenceMta(addresses);
  try {
    const payloads = payloadsFor();
    const cpu0 = mta.cpuMs();
    const client0 = process.cpuUsage();
    const machine0 = machineTicks();
    const epoch0 = Date.now();
    const load = await deliver(mta.smtpPort, payloads, () => {});
    // Postfix's 250 means queued; Dovecot stores the rest afterwards.
    const deadline = Date.now() + 600_000;
    let stored = mta.stored();
    while (stored < total && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      stored = mta.stored();
    }
    const machine1 = machineTicks();
    const client1 = process.cpuUsage();
    const cpu1 = mta.cpuMs();
    const accepted = (load.last250 - load.t0) / 1000;
    const storedSeconds = (mta.lastStoredAt() - epoch0) / 1000;
    const rate = total / storedSeconds;
    console.log(`Reference, Postfix → LMTP → Dovecot (Maildir): ${header()}`);
    console.log(`first connect to last message stored: ${storedSeconds.toFixed(2)} s = ${Math.round(rate)} msg/s; stored ${stored}/${total}; Postfix's last 250 (queued) after ${accepted.toFixed(2)} s = ${Math.round(total / accepted)} msg/s`);
    const clientMs = (client1.user + client1.system - client0.user - client0.system) / 1000;
    console.log(`Postfix and Dovecot CPU per message: ${((cpu1 - cpu0) / total).toFixed(2)} ms; the senders ${(clientMs / total).toFixed(2)} ms; the machine's cores were ${busyPercent(machine0, machine1)} % busy`);
    const { p50, p99 } = summary(load.storeMs);
    console.log(`final "." to its 250 (queued): p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`);
    if (stored !== total) throw new Error(`${total - stored} messages were not stored by the reference`);
    return rate;
  } finally {
    await mta.close();
  }
}

/** The same senders into smtp-sink, which stores nothing: the ceiling of this client and protocol here. */
async function runSink(): Promise<number> {
  const sink = await startSmtpSink();
  try {
    const load = await deliver(sink.smtpPort, payloadsFor(), () => {});
    const seconds = (load.last250 - load.t0) / 1000;
    console.log(`Ceiling, the same senders into Postfix's smtp-sink (stores nothing): ${Math.round(total / seconds)} msg/s`);
    return total / seconds;
  } finally {
    await sink.close();
  }
}

async function main(): Promise<void> {
  if (reference) {
    const why = referenceUnavailable();
    if (why) throw new Error(`--reference yes: ${why}`);
    await runSink();
  }
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (reference && r % 2 === 1) theirs.push(await runReference());
    ours.push(await runMailmux());
    if (reference && r % 2 === 0) theirs.push(await runReference());
  }
  if (reference) {
    const ratios = ours.map((m, i) => m / theirs[i]!);
    console.log(`\nMailmux ${ours.map(Math.round).join(', ')} msg/s; Postfix → Dovecot ${theirs.map(Math.round).join(', ')} msg/s stored; ratio ${ratios.map((x) => x.toFixed(2)).join(', ')}`);
    console.log('(the issue: reference about 250 msg/s, goal at least 1,000 msg/s, a ratio of 4)');
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
