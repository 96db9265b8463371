// A loopback HTTPS webhook endpoint for tests and the bench: a self-signed certificate for
// localhost / 127.0.0.1 (written to a PEM file for MAILMUX_WEBHOOK_CA_FILE), every request kept
// with its raw body bytes, and answers chosen by the test.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  raw: Buffer;
  at: number;
}

export interface Answer {
  status: number;
  body?: string;
  /** Hold the answer this long (timeouts). */
  delayMs?: number;
}

/** A name only the tests' resolver knows, also on the certificate: proves pinning and SNI. */
export const RECEIVER_NAME = 'hooks.receiver.test';

let material: Promise<{ cert: string; key: string }> | null = null;

/** One certificate per process: RSA key generation is slow. */
function certificate(): Promise<{ cert: string; key: string }> {
  material ??= (async () => {
    const { generate } = await import('selfsigned');
    const now = Date.now();
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
      keySize: 2048,
      algorithm: 'sha256',
      notBeforeDate: new Date(now - 86_400_000),
      notAfterDate: new Date(now + 30 * 86_400_000),
      extensions: [
        { name: 'basicConstraints', cA: true },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 2, value: RECEIVER_NAME }, { type: 7, ip: '127.0.0.1' }] },
      ],
    });
    return { cert: pems.cert, key: pems.private };
  })();
  return material;
}

/** Verifies X-Sendmux-Signature over the raw bytes, as the docs' verifier does (constant time). */
export function verifySignature(secret: string, raw: Buffer, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string') return false;
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`);
  const got = Buffer.from(header);
  return got.length === expected.length && timingSafeEqual(got, expected);
}

export class WebhookReceiver {
  readonly requests: ReceivedRequest[] = [];
  /** Answers handed out in order; when empty, `fallback` answers. */
  readonly answers: Answer[] = [];
  fallback: Answer = { status: 200, body: 'ok' };
  port = 0;
  caFile = '';
  private server: https.Server | null = null;
  private dir = '';
  private waiters: { n: number; resolve: () => void }[] = [];

  async start(): Promise<void> {
    const { cert, key } = await certificate();
    this.dir = mkdtempSync(join(tmpdir(), 'mailmux-webhook-ca-'));
    this.caFile = join(this.dir, 'ca.pem');
    writeFileSync(this.caFile, cert);
    this.server = https.createServer({ cert, key, keepAlive: true }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, raw: Buffer.concat(chunks), at: Date.now() });
        const answer = this.answers.shift() ?? this.fallback;
        const send = (): void => {
          res.writeHead(answer.status, { 'content-type': 'text/plain' });
          res.end(answer.body ?? '');
        };
        if (answer.delayMs) setTimeout(send, answer.delayMs);
        else send();
        this.notify();
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
  }

  url(path = '/hook', host = 'localhost'): string {
    return `https://${host}:${this.port}${path}`;
  }

  private notify(): void {
    this.waiters = this.waiters.filter((w) => {
      if (this.requests.length >= w.n) w.resolve();
      return this.requests.length < w.n;
    });
  }

  /** Resolves once `n` requests in total have arrived (fails after timeoutMs). */
  waitFor(n: number, timeoutMs = 10_000): Promise<void> {
    if (this.requests.length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`expected ${n} webhook requests, got ${this.requests.length}`)), timeoutMs);
      this.waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
