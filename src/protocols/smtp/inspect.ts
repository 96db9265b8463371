// Inspection of a message after the DATA dot, before spam scoring and ingest: sender
// authentication (SPF, DKIM, DMARC, ARC through mailauth), the trace headers on top, and the MIME
// parse of the message as it will be stored. It is the CPU-heavy part of receiving that needs no
// database, so with spare cores it runs in worker threads (inspect-worker.ts) while the event loop
// speaks SMTP and writes the store. Moving a message and its parse between threads is not free:
// on two cores it costs about what the event loop saves, and the default there is no threads
// (config.ts, defaultInspectWorkers).
//
// The pool is shared by every listener of the process and starts its threads at the first message.
// A thread that fails or exits has its messages inspected again on the event loop (the same code,
// as it ran before workers existed) and is replaced at the next message.
// MAILMUX_SMTP_INSPECT_WORKERS=0 inspects on the event loop only.
import { Worker } from 'node:worker_threads';
import type { DNSResolver } from 'mailauth';
import { parseMessage, type ParsedMessage } from '../../mime/parse.ts';
import { authenticateInbound, dnsResolver, type AuthVerdict } from '../../services/mail/inbound-auth.ts';
import { prependHeaders, stripOwnAuthResults } from './trace.ts';

export interface InspectTask {
  /** The message as the client sent it. */
  original: Uint8Array;
  ip: string;
  helo: string;
  /** MAIL FROM ('' for the null sender). */
  sender: string;
  /** Our authserv-id (the host name). */
  authservId: string;
  /** The Received field, made by the caller (it needs the session). */
  received: string;
}

export interface Inspected {
  auth: AuthVerdict;
  /** Why authentication could not run (its verdicts are then temperror), for the log. */
  authError: string | null;
  /** The message to store: our trace headers on top, a forged Authentication-Results of ours removed. */
  raw: Buffer;
  /** parseMessage(raw). */
  parsed: ParsedMessage;
}

/** Authenticates, adds the trace headers, parses. Never throws for bad mail (each step degrades). */
export async function inspectMessage(task: InspectTask, resolver: DNSResolver): Promise<Inspected> {
  const original = Buffer.isBuffer(task.original) ? task.original : Buffer.from(task.original.buffer, task.original.byteOffset, task.original.byteLength);
  const { verdict, error } = await authenticateInbound({ raw: original, ip: task.ip, helo: task.helo, sender: task.sender }, task.authservId, resolver);
  const raw = prependHeaders(stripOwnAuthResults(original, task.authservId), [`Authentication-Results: ${verdict.headerValue}`, task.received]);
  const parsed = await parseMessage(raw);
  return { auth: verdict, authError: error, raw, parsed };
}

/**
 * The bytes of a view in an ArrayBuffer of their own. Posting a view copies its whole buffer, and a
 * small Buffer is a slice of a shared 8 KiB pool; a buffer of its own can also be transferred.
 */
export function ownBytes(view: Uint8Array): Uint8Array {
  return view.byteOffset === 0 && view.byteLength === view.buffer.byteLength && view.buffer instanceof ArrayBuffer ? view : new Uint8Array(view);
}

/** What a worker receives, and sends back. */
export interface WorkerRequest {
  id: number;
  task: InspectTask;
  dnsServers: string[];
}
export type WorkerReply = { id: number; result: Omit<Inspected, 'raw'> & { raw: Uint8Array } } | { id: number; error: string };

interface Pending {
  resolve: (r: Inspected) => void;
  reject: (e: Error) => void;
}

class InspectThread {
  private worker: Worker | null = null;
  readonly pending = new Map<number, Pending>();

  post(request: WorkerRequest, pending: Pending): void {
    const worker = (this.worker ??= this.start());
    this.pending.set(request.id, pending);
    if (this.pending.size === 1) worker.ref();
    worker.postMessage(request);
  }

  private start(): Worker {
    const worker = new Worker(new URL('./inspect-worker.ts', import.meta.url));
    // An idle pool never keeps the process alive.
    worker.unref();
    worker.on('message', (reply: WorkerReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if ('error' in reply) p.reject(new Error(reply.error));
      else {
        const r = reply.result;
        p.resolve({ ...r, raw: Buffer.from(r.raw.buffer, r.raw.byteOffset, r.raw.byteLength) });
      }
    });
    const fail = (err: Error): void => {
      if (this.worker === worker) this.worker = null;
      const pending = [...this.pending.values()];
      this.pending.clear();
      for (const p of pending) p.reject(err);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`inspection worker exited with code ${code}`)));
    return worker;
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w) await w.terminate();
  }
}

export class InspectPool {
  private readonly threads: InspectThread[];
  private nextId = 1;

  constructor(size: number) {
    this.threads = Array.from({ length: size }, () => new InspectThread());
  }

  /** Inspects in the least busy thread. Rejects only when the thread failed. */
  run(task: InspectTask, dnsServers: string[]): Promise<Inspected> {
    let thread = this.threads[0]!;
    for (const t of this.threads) if (t.pending.size < thread.pending.size) thread = t;
    const id = this.nextId++;
    const request: WorkerRequest = { id, task: { ...task, original: ownBytes(task.original) }, dnsServers };
    return new Promise<Inspected>((resolve, reject) => thread.post(request, { resolve, reject }));
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.close()));
  }
}

let shared: InspectPool | null = null;

/** The process's pool (its size fixed by the first caller), or null for inspection on the event loop. */
export function sharedInspectPool(size: number): InspectPool | null {
  if (size <= 0) return null;
  return (shared ??= new InspectPool(size));
}

/** Resolvers per DNS server list (a worker serves every listener of the process). */
const resolvers = new Map<string, DNSResolver>();
export function resolverFor(servers: string[]): DNSResolver {
  const key = servers.join(',');
  let r = resolvers.get(key);
  if (!r) {
    r = dnsResolver(servers);
    resolvers.set(key, r);
  }
  return r;
}
