// GET /mailboxes/{id} on Mailmux against a bare Fastify route returning the same JSON, 50
// connections with wrk (apt-get install wrk): requests/s and p99 of both, and their ratio.
// Usage: node bench/management-overhead.ts [--backend sqlite|postgres] [--seconds 10]
import { spawn, execFileSync } from 'node:child_process';
import { arg, createBenchMailbox, startBenchServer } from './lib.ts';

const seconds = arg('seconds', '10');
const backend = arg('backend', 'sqlite');

interface WrkResult {
  rps: number;
  p50: string;
  p99: string;
  non2xx: number;
}

function wrk(url: string, headers: string[]): WrkResult {
  const args = ['-t2', '-c50', `-d${seconds}s`, '--latency', ...headers.flatMap((h) => ['-H', h]), url];
  const out = execFileSync('wrk', args, { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const p50 = /\s50%\s+(\S+)/.exec(out)?.[1] ?? '?';
  const p99 = /\s99%\s+(\S+)/.exec(out)?.[1] ?? '?';
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  return { rps, p50, p99, non2xx };
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

  wrk(`${server.httpUrl}${path}`, [auth]); // warm-up both
  wrk(`${bareUrl}${path}`, []);
  const mm = wrk(`${server.httpUrl}${path}`, [auth]);
  const ref = wrk(`${bareUrl}${path}`, []);
  bare.kill('SIGTERM');
  await rig.close();

  console.log(`GET /mailboxes/{id}, wrk -t2 -c50 -d${seconds}s, backend ${backend}, ${new Date().toISOString()}`);
  console.log('| server | requests/s | p50 | p99 | non-2xx |\n| --- | --- | --- | --- | --- |');
  console.log(`| Mailmux | ${mm.rps} | ${mm.p50} | ${mm.p99} | ${mm.non2xx} |`);
  console.log(`| bare Fastify | ${ref.rps} | ${ref.p50} | ${ref.p99} | ${ref.non2xx} |`);
  console.log(`ratio Mailmux / bare Fastify: ${(mm.rps / ref.rps).toFixed(2)} (goal >= 0.6)`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
