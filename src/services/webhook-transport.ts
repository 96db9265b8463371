// How one webhook POST goes out: the SSRF guard (the URL's host is resolved, internal addresses are
// refused, and the connection is pinned to the address that was checked, with SNI and Host still
// the URL's host name), then an HTTPS POST with a whole-request deadline and a short preview of the
// answer. Failures come back as a public-safe category, never as an exception.
import { lookup as dnsLookup } from 'node:dns/promises';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import type { SecureContext } from 'node:tls';

/** Bytes of the endpoint's answer kept as the attempt's response preview. */
export const RESPONSE_PREVIEW_BYTES = 1024;
/** Answer bytes read at most (then the connection is dropped): enough for any sane ack. */
const RESPONSE_READ_MAX = 64 * 1024;

export type TransportError =
  | 'destination_not_allowed'
  | 'invalid_url'
  | 'dns_error'
  | 'timeout'
  | 'connection_refused'
  | 'connection_reset'
  | 'tls_error'
  | 'network_error';

export interface PostResult {
  status: number | null;
  ms: number;
  body: string | null;
  error: TransportError | null;
}

// --- address policy

function v4ToInt(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

/** [network, prefix length] pairs refused for IPv4. */
const V4_BLOCKED: readonly [string, number][] = [
  ['0.0.0.0', 8], // "this network", includes the unspecified address
  ['10.0.0.0', 8], // RFC 1918
  ['100.64.0.0', 10], // CGNAT (RFC 6598)
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata lives here)
  ['172.16.0.0', 12], // RFC 1918
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.168.0.0', 16], // RFC 1918
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and 255.255.255.255 broadcast
];

function v4Blocked(ip: string): boolean {
  const n = v4ToInt(ip);
  return V4_BLOCKED.some(([net, bits]) => {
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    return ((n & mask) >>> 0) === ((v4ToInt(net) & mask) >>> 0);
  });
}

/** The eight 16-bit groups of an IPv6 address (with an embedded dotted IPv4 tail expanded). */
function v6Groups(ip: string): number[] | null {
  let s = ip.toLowerCase();
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    const n = v4ToInt(dotted[1]!);
    s = `${s.slice(0, dotted.index)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const missing = 8 - head.length - tail.length;
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return null;
  const groups = [...head, ...Array<string>(missing).fill('0'), ...tail].map((g) => parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : null;
}

function v6Blocked(ip: string): boolean {
  const g = v6Groups(ip);
  if (!g) return true;
  const [a, b, c, d, e, f, h, i] = g as [number, number, number, number, number, number, number, number];
  const embedded = `${h >> 8}.${h & 0xff}.${i >> 8}.${i & 0xff}`;
  if (a === 0 && b === 0 && c === 0 && d === 0 && e === 0) {
    if (f === 0xffff) return v4Blocked(embedded); // IPv4-mapped ::ffff:a.b.c.d
    if (f === 0) return true; // unspecified ::, loopback ::1, deprecated IPv4-compatible ::a.b.c.d
  }
  if (a === 0x64 && b === 0xff9b && c === 0 && d === 0 && e === 0 && f === 0) return v4Blocked(embedded); // NAT64
  if ((a & 0xfe00) === 0xfc00) return true; // unique-local fc00::/7
  if ((a & 0xffc0) === 0xfe80) return true; // link-local fe80::/10
  if ((a & 0xffc0) === 0xfec0) return true; // site-local fec0::/10 (deprecated)
  if ((a & 0xff00) === 0xff00) return true; // multicast ff00::/8
  return false;
}

/** True for addresses a webhook may not reach: loopback, private, CGNAT, link-local, unique-local, unspecified, multicast, and IPv4-mapped forms of these. */
export function isForbiddenAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return v4Blocked(ip);
  if (family === 6) return v6Blocked(ip);
  return true;
}

export interface ResolvedTarget {
  url: URL;
  host: string;
  address: string;
  family: 4 | 6;
}

export type Resolver = (host: string) => Promise<{ address: string; family: number }[]>;

const systemResolver: Resolver = (host) => dnsLookup(host, { all: true, verbatim: true });

/** Resolves the URL's host and picks an address the policy allows; the POST connects only there. */
export async function resolveTarget(rawUrl: string, allowPrivate: boolean, resolver: Resolver = systemResolver): Promise<ResolvedTarget | TransportError> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    return 'invalid_url';
  }
  if (url.protocol !== 'https:' || url.hostname === '') return 'invalid_url';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let candidates: { address: string; family: number }[];
  if (isIP(host)) candidates = [{ address: host, family: isIP(host) }];
  else {
    try {
      candidates = await resolver(host);
    } catch {
      return 'dns_error';
    }
  }
  const ok = candidates.find((c) => allowPrivate || !isForbiddenAddress(c.address));
  if (!ok) return candidates.length === 0 ? 'dns_error' : 'destination_not_allowed';
  return { url, host, address: ok.address, family: ok.family === 6 ? 6 : 4 };
}

// --- the POST

function categorise(err: unknown): TransportError {
  const code = String((err as { code?: unknown } | null)?.code ?? '');
  if (code === 'ETIMEDOUT' || code === 'WEBHOOK_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return 'timeout';
  if (code === 'ECONNREFUSED') return 'connection_refused';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED') return 'connection_reset';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns_error';
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY|HOSTNAME_MISMATCH|ERR_TLS/i.test(code)) return 'tls_error';
  return 'network_error';
}

export interface PostOptions {
  target: ResolvedTarget;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  agent: https.Agent;
  /** The system CAs plus MAILMUX_WEBHOOK_CA_FILE, when that is set. */
  secureContext?: SecureContext | undefined;
}

/** POSTs once; never throws. */
export function postOnce(o: PostOptions): Promise<PostResult> {
  const started = performance.now();
  const { target } = o;
  // The pinned lookup: whatever asks, the answer is the address that passed the policy.
  const pinned: LookupFunction = (_hostname, options, callback) => {
    if ((options as { all?: boolean }).all) (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: target.address, family: target.family }]);
    else callback(null, target.address, target.family);
  };
  return new Promise((resolveResult) => {
    let settled = false;
    const finish = (r: Omit<PostResult, 'ms'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      resolveResult({ ...r, ms: Math.max(0, Math.round(performance.now() - started)) });
    };
    const req = https.request({
      method: 'POST',
      host: target.host,
      port: target.url.port === '' ? 443 : Number(target.url.port),
      path: `${target.url.pathname}${target.url.search}`,
      headers: { ...o.headers, 'Content-Length': String(Buffer.byteLength(o.body)) },
      servername: isIP(target.host) ? undefined : target.host,
      lookup: pinned,
      agent: o.agent,
      ...(o.secureContext ? { secureContext: o.secureContext } : {}),
    } as https.RequestOptions);
    const deadline = setTimeout(() => {
      const err = Object.assign(new Error('webhook request timed out'), { code: 'WEBHOOK_TIMEOUT' });
      req.destroy(err);
    }, o.timeoutMs);
    req.on('error', (err) => finish({ status: null, body: null, error: categorise(err) }));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const done = (): void => {
        const preview = Buffer.concat(chunks).subarray(0, RESPONSE_PREVIEW_BYTES).toString('utf8').replace(/\uFFFD+$/, '');
        finish({ status: res.statusCode ?? null, body: preview.length > 0 ? preview : null, error: null });
      };
      res.on('data', (chunk: Buffer) => {
        if (size < RESPONSE_PREVIEW_BYTES) chunks.push(chunk);
        size += chunk.length;
        if (size > RESPONSE_READ_MAX) {
          done();
          res.destroy();
        }
      });
      res.on('end', done);
      res.on('error', () => done());
      res.on('aborted', () => done());
    });
    req.end(o.body);
  });
}
