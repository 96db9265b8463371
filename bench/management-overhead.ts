// GET /mailboxes/{id} on Mailmux against a bare Fastify route returning the same JSON, 50
// connections with wrk (apt-get install wrk): requests/s and p99 of both, and their ratio. Also the
// CPU time each server process spends per request (user + system, from /proc; Linux only), which
// moves less than requests/s when other work shares the machine, and the load average before each
// round (repeat when it is above the core count).
// Usage: node bench/management-overhead.ts [--backend sqlite|postgres] [--seconds 10] [--rounds 1]
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { arg, createBenchMailbox, startBenchServer } from './lib.ts';

const seconds = arg('seconds', '10');
const backend = arg('backend', 'sqlite');
const rounds = Number(arg('rounds', '1'));

interface WrkResult {
  rps: number;
  p50: string;
  p99: string;
  non2xx: number;
  /** Server CPU microseconds per request (user + system), or NaN where /proc is missing. */
  cpuUs: number;
}

/** utime + stime of a process, in clock ticks (USER_HZ, 100 on Linux). */
function cpuTicks(pid: number): number {
  const path = `/proc/${pid}/stat`;
  if (!existsSync(path)) return NaN;
  const fields = readFileSync(path, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function wrk(url: string, headers: string[], pid: number): WrkResult {
  const args = ['-t2', '-c50', `-d${seconds}s`, '--latency', ...headers.flatMap((h) => ['-H', h]), url];
  const before = cpuTicks(pid);
  const out = execFileSync('wrk', args, { encoding: 'utf8' });
  const ticks = cpuTicks(pid) - before;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const p50 = /\s50%\s+(\S+)/.exec(out)?.[1] ?? '?';
  const p99 = /\s99%\s+(\S+)/.exec(out)?.[1] ?? '?';
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  return { rps, p50, p99, non2xx, cpuUs: Math.round((ticks * 10_000) / requests) };
}

async function main(): Promise<void> {
  const rig = await startBenchServer(backend, { MAILMUX_RATE_LIMIT_MANAGEMENT: '0' });
  const { server } = rig;
  const auth = `Authorization: Bearer ${server.rootKey}`;
  const { id } = await createBenchMailbox(server, 'bench@bench.mailmux.test');
  const path = `/api/v1/mailboxes/${id}`;
  const body = await (await fetch(`${server.httpUrl}${path}`, { headers: { authorization: `Bearer ${server.rootKey}` } })).text();

  const bare = spawn(process.execPath, [new URL('./bare-fastify.ts', import.meta.url).pathname, path, body], { stdio: ['ignore', 'pipe', 'inherit'] });
  const bareUrl = await new Promise<string>((resolve) => bare.stdout!.on('data', (d: Buffer) => resolve(/listening (\S+)/.exec(d.toString())![1]!)));
  const mailmuxPid = server.child.pid!;
  const barePid = bare.pid!;

  wrk(`${server.httpUrl}${path}`, [auth], mailmuxPid); // warm-up both
  wrk(`${bareUrl}${path}`, [], barePid);
  const results: { load: number; mm: WrkResult; ref: WrkResult }[] = [];
  for (let i = 0; i < rounds; i++) {
    const load = loadavg()[0]!;
    const mm = wrk(`${server.httpUrl}${path}`, [auth], mailmuxPid);
    const ref = wrk(`${bareUrl}${path}`, [], barePid);
    results.push({ load, mm, ref });
  }
  bare.kill('SIGTERM');
  await rig.close();

  console.log(`GET /mailboxes/{id}, wrk -t2 -c50 -d${seconds}s, backend ${backend}, ${new Date().toISOString()}`);
  console.log('| round | load | server | requests/s | p50 | p99 | non-2xx | CPU µs/request |\n| --- | --- | --- | --- | --- | --- | --- | --- |');
  results.forEach(({ load, mm, ref }, i) => {
    console.log(`| ${i + 1} | ${load.toFixed(2)} | Mailmux | ${mm.rps} | ${mm.p50} | ${mm.p99} | ${mm.non2xx} | ${mm.cpuUs} |`);
    console.log(`| ${i + 1} | | bare Fastify | ${ref.rps} | ${ref.p50} | ${ref.p99} | ${ref.non2xx} | ${ref.cpuUs} |`);
  });
  for (const [i, { mm, ref }] of results.entries()) {
    console.log(`round ${i + 1}: ratio Mailmux / bare Fastify: ${(mm.rps / ref.rps).toFixed(2)} (goal >= 0.6); CPU per request bare / Mailmux: ${(ref.cpuUs / mm.cpuUs).toFixed(2)}`);
  }
  if (results.some((r) => r.mm.non2xx > 0)) console.log('WARNING: Mailmux answered non-2xx responses; the figures above do not measure the success path');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
