// A lean HTTP/1.1 load generator in a process of its own (bench/mailbox-queries.ts --client raw).
// It loads nothing but node:net, so its heap stays a few MB: the process that fills the bench
// store has the whole application and a store open, and its garbage collections (mark-compacts of
// 15-20 ms were seen) would stall every request in flight and show as server latency.
//
// Protocol, one JSON document a line: the parent writes {host, port, headers, concurrency} once,
// then {paths: [...]} for each phase; the child answers each phase with {lat: [...ms]} (in the
// order the requests finished) or {error}. Worker w always uses connection w (keep-alive).
import net from 'node:net';
import { createInterface } from 'node:readline';

/**
 * One keep-alive HTTP/1.1 connection that sends a GET and reads the answer (status line,
 * Content-Length, body bytes counted, not kept): the least a load generator can do per request.
 */
class RawConnection {
  private readonly socket: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  private want: { resolve: (status: number) => void; reject: (err: Error) => void } | null = null;
  private status = 0;
  private bodyLeft = -1;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (err) => this.want?.reject(err));
    socket.on('close', () => this.want?.reject(new Error('connection closed')));
  }

  static open(host: string, port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, host, () => resolve(new RawConnection(s)));
      s.once('error', reject);
    });
  }

  private onData(d: Buffer): void {
    if (this.bodyLeft > 0) {
      const take = Math.min(this.bodyLeft, d.length);
      this.bodyLeft -= take;
      d = d.subarray(take);
      if (this.bodyLeft === 0) this.done();
      if (d.length === 0) return;
    }
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.buf.toString('latin1', 0, end);
    const m = /content-length:\s*(\d+)/i.exec(head);
    if (!m) return this.want?.reject(new Error(`no Content-Length: ${head.split('\r\n')[0]}`));
    this.status = Number(head.slice(9, 12));
    const rest = this.buf.subarray(end + 4);
    this.buf = Buffer.alloc(0);
    this.bodyLeft = Number(m[1]) - rest.length;
    if (this.bodyLeft <= 0) this.done();
  }

  private done(): void {
    this.bodyLeft = -1;
    const w = this.want;
    this.want = null;
    w?.resolve(this.status);
  }

  get(path: string, headers: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.want = { resolve, reject };
      this.socket.write(`GET ${path} HTTP/1.1\r\nHost: bench\r\n${headers}\r\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

interface Setup {
  host: string;
  port: number;
  /** Header lines, each ending in CRLF. */
  headers: string;
  concurrency: number;
}

async function runPhase(conns: RawConnection[], headers: string, paths: string[]): Promise<number[]> {
  const lat: number[] = [];
  let next = 0;
  await Promise.all(
    conns.map(async (conn) => {
      for (;;) {
        const i = next++;
        if (i >= paths.length) return;
        const t = performance.now();
        const status = await conn.get(paths[i]!, headers);
        lat.push(performance.now() - t);
        if (status !== 200) throw new Error(`${paths[i]}: ${status}`);
      }
    }),
  );
  return lat;
}

async function main(): Promise<void> {
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done) return;
  const setup = JSON.parse(first.value) as Setup;
  const conns = await Promise.all(Array.from({ length: setup.concurrency }, () => RawConnection.open(setup.host, setup.port)));
  for (;;) {
    const line = await lines.next();
    if (line.done) break;
    const { paths } = JSON.parse(line.value) as { paths: string[] };
    try {
      process.stdout.write(`${JSON.stringify({ lat: await runPhase(conns, setup.headers, paths) })}\n`);
    } catch (err) {
      process.stdout.write(`${JSON.stringify({ error: (err as Error).message })}\n`);
    }
  }
  for (const c of conns) c.close();
}

await main();
