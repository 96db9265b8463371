// Receive throughput: 20 concurrent SMTP senders deliver 10,000 messages of about 10 KB to 100
// mailboxes; messages/s from the first connect to the last 250 (each 250 means stored durably).
// Usage: node bench/receive.ts [--backend sqlite|postgres] [--messages 10000] [--senders 20] [--pipelining yes|no]
// A loopback DNS server answers the SPF/DKIM/DMARC lookups (NXDOMAIN) as a local resolver would.
// --pipelining yes: each sender sends MAIL, RCPT and DATA in one packet and then reads the three
// replies (RFC 2920; Postfix's SMTP client does so whenever the server offers PIPELINING);
// no (the default): one command at a time, waiting for each reply.
import { arg, cpuMs, ioCalls, summary, threadCpuMs, writtenBytes, createBenchMailbox, benchMessage as message, dataBytes, rssMiB, SmtpClient, startBenchServer } from './lib.ts';

const backend = arg('backend', 'sqlite');
const total = Number(arg('messages', '10000'));
const senders = Number(arg('senders', '20'));
const pipelining = arg('pipelining', 'no') === 'yes';
const MAILBOXES = 100;
/** Messages per SMTP connection before the sender reconnects (Postfix reuses a connection for up to 100). */
const MESSAGES_PER_CONNECTION = 100;

async function main(): Promise<void> {
  const rig = await startBenchServer(backend, { MAILMUX_RATE_LIMIT_MANAGEMENT: '0' });
  const { server, smtpPort, dataDir, databaseUrl } = rig;
  const addresses: string[] = [];
  for (let m = 0; m < MAILBOXES; m++) addresses.push((await createBenchMailbox(server, `agent${m}@bench.mailmux.test`)).email);
  const messages = Array.from({ length: total }, (_, i) => message(i, addresses[i % MAILBOXES]!));
  const size = Buffer.byteLength(messages[0]!);
  const payloads = messages.map(dataBytes);

  let next = 0;
  let last250 = 0;
  let cpuAtLast250 = 0;
  const pid = server.child.pid!;
  const cpu0 = cpuMs(pid);
  const main0 = cpuMs(pid, true);
  let mainAtLast250 = 0;
  const written0 = writtenBytes(pid);
  const calls0 = ioCalls(pid);
  let callsAtLast250 = calls0;
  const threads0 = threadCpuMs(pid);
  let threadsAtLast250 = threads0;
  /** From the final "." to its 250: how long storing a message takes, as the sender sees it. */
  const storeMs: number[] = [];
  let writtenAtLast250 = 0;
  const client0 = process.cpuUsage();
  let clientAtLast250 = client0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: senders }, async () => {
      // Like an MTA, a sender reuses a connection for a bounded number of messages.
      for (let done = false; !done; ) {
        const c = await SmtpClient.connect(smtpPort);
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
          if (next >= total) {
            cpuAtLast250 = cpuMs(pid);
            mainAtLast250 = cpuMs(pid, true);
            writtenAtLast250 = writtenBytes(pid);
            callsAtLast250 = ioCalls(pid);
            threadsAtLast250 = threadCpuMs(pid);
            clientAtLast250 = process.cpuUsage();
          }
        }
        c.close();
      }
    }),
  );
  const seconds = (last250 - t0) / 1000;
  const rss = rssMiB(server.child.pid!);

  // Every 250 must be a stored message: count them through the API.
  let stored = 0;
  const me = await fetch(`${server.httpUrl}/api/v1/mailboxes?limit=100`, { headers: { authorization: `Bearer ${server.rootKey}` } });
  if (me.status !== 200) throw new Error('list mailboxes failed');
  await server.stop();
  const { loadConfig } = await import('../src/config/config.ts');
  const { openServices } = await import('../src/app/app.ts');
  const { silentLogger } = await import('../src/services/context.ts');
  const { store } = await openServices(loadConfig({ MAILMUX_DATA_DIR: dataDir, MAILMUX_DEFAULT_DOMAIN: 'bench.mailmux.test', ...(databaseUrl ? { MAILMUX_DATABASE_URL: databaseUrl } : {}) }), { log: silentLogger });
  for (const row of await store.mailboxes.listForTeam((await store.teams.first())!.id, { limit: 1000, after: null, includeDeleted: false })) {
    stored += await store.messageQuery.count({ mailboxId: row.id });
  }
  await store.close();

  console.log(`backend ${backend}: ${total} messages of ${Math.round(size / 1024)} KB, ${senders} concurrent senders${pipelining ? ' (pipelining)' : ''}, ${MAILBOXES} mailboxes`);
  console.log(`first connect to last 250: ${seconds.toFixed(2)} s = ${Math.round(total / seconds)} msg/s; stored ${stored}/${total}; server RSS ${rss} MiB`);
  // CPU per message moves less than msg/s when other work shares the cores.
  console.log(`server CPU per message: ${((cpuAtLast250 - cpu0) / total).toFixed(2)} ms (main thread ${((mainAtLast250 - main0) / total).toFixed(2)} ms); written (WAL, checkpoints, files, sockets): ${((writtenAtLast250 - written0) / total / 1024).toFixed(1)} KiB per message, in ${((callsAtLast250.writes - calls0.writes) / total).toFixed(1)} write calls (${((callsAtLast250.reads - calls0.reads) / total).toFixed(1)} read calls)`);
  const perThread = [...threadsAtLast250]
    .map(([name, ms]) => [name, (ms - (threads0.get(name) ?? 0)) / total] as const)
    .filter(([, ms]) => ms >= 0.01)
    .sort((a, b) => b[1] - a[1]);
  console.log(`  by thread: ${perThread.map(([name, ms]) => `${name} ${ms.toFixed(2)}`).join(', ')} (WorkerThread: the ingest writer, its flusher, checkpoints and, with more than two cores, inspection; V8Worker: garbage collection)`);
  // The senders share the machine's cores with the server (smtp-source, the reference's client, is C).
  const clientMs = (clientAtLast250.user + clientAtLast250.system - client0.user - client0.system) / 1000;
  console.log(`the senders (this process) used ${(clientMs / total).toFixed(2)} ms of CPU per message`);
  const { p50, p99 } = summary(storeMs);
  console.log(`final "." to its 250: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`);
  await rig.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
