// Sender authentication of inbound mail with mailauth: SPF (client IP, HELO, MAIL FROM), DKIM,
// DMARC and ARC, looked up through the configured DNS servers. The verdicts become one
// Authentication-Results header (RFC 8601) on top of the stored message, a one-line copy in the
// index, and inputs to the spam score. Unsigned mail is checked on its header section, and its
// verdicts are reused for a few seconds for mail from the same client, envelope sender and author
// (authenticateInbound): mailauth was the largest cost of a received message on the event loop.
import { Resolver } from 'node:dns/promises';
import type { AuthenticateResult, DNSResolver } from 'mailauth';
import type * as Mailauth from 'mailauth';
import { DNS_TIMEOUT_MS } from '../../config/limits.ts';

export interface AuthInput {
  raw: Buffer;
  /** Address of the connecting client. */
  ip: string;
  /** EHLO/HELO name. */
  helo: string;
  /** MAIL FROM ('' for the null sender). */
  sender: string;
}

/** What the spam score reads; results use RFC 8601 keywords. */
export interface AuthVerdict {
  spf: string;
  /** pass when any signature passes, fail when signatures exist and none passes, else none (or temperror...). */
  dkim: string;
  dmarc: { result: string; policy: string | null };
  arc: string;
  /** Authentication-Results field value, folded, for the raw message. */
  headerValue: string;
  /** The same on one line, for the index row. */
  summary: string;
}

// mailauth and its dependencies take about a second to load: on first use, not at every start.
let mailauth: Promise<typeof Mailauth> | null = null;
const loadMailauth = (): Promise<typeof Mailauth> => (mailauth ??= import('mailauth'));

/** How long a DNS answer is reused for SPF/DKIM/DMARC/ARC checks (short: records change, and TTLs are not exposed). */
export const DNS_CACHE_TTL_MS = 60_000;
/** Answers cached at most. */
const DNS_CACHE_MAX = 10_000;

/** mailauth's lookups through the configured resolvers (tests point them at a loopback DNS server). */
export function dnsResolver(servers: string[]): DNSResolver {
  const resolver = new Resolver({ timeout: DNS_TIMEOUT_MS, tries: 2 });
  if (servers.length > 0) resolver.setServers(servers);
  // A small answer cache, as an MTA's local caching resolver would give: mail from one sender
  // domain asks the same SPF/DMARC/DKIM names again and again. Definite answers (records,
  // NXDOMAIN, NODATA) are kept briefly; temporary failures are not kept.
  const cache = new Map<string, { until: number; answer: Promise<string[][] | string[]> }>();
  return (name, rrtype) => {
    const key = `${rrtype} ${name.toLowerCase()}`;
    const now = Date.now();
    const hit = cache.get(key);
    if (hit && hit.until > now) return hit.answer;
    const answer = resolver.resolve(name, rrtype) as Promise<string[][] | string[]>;
    if (cache.size >= DNS_CACHE_MAX) cache.clear();
    cache.set(key, { until: now + DNS_CACHE_TTL_MS, answer });
    answer.catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOTFOUND' && err.code !== 'ENODATA') cache.delete(key);
    });
    return answer;
  };
}

function dkimSummary(result: AuthenticateResult): string {
  const rows = result.dkim.results ?? [];
  if (rows.some((r) => r.status.result === 'pass')) return 'pass';
  const signed = rows.filter((r) => r.status.result !== 'none');
  if (signed.length === 0) return 'none';
  if (signed.some((r) => r.status.result === 'fail')) return 'fail';
  return signed[0]?.status.result ?? 'none';
}

/** The Authentication-Results value out of mailauth's header block (Received-SPF comes with it). */
function authResultsValue(headers: string): string | null {
  const m = /(?:^|\r?\n)Authentication-Results:[ \t]*((?:[^\r\n]*)(?:\r?\n[ \t][^\r\n]*)*)/i.exec(headers);
  return m?.[1] ? m[1].replace(/\r?\n/g, '\r\n') : null;
}

const LF = 0x0a;
const CR = 0x0d;
/** Header names whose checks hash the body: DKIM-Signature, and ARC's ARC-Message-Signature. */
const BODY_SIGNATURE = /dkim-signature|arc-/i;

/** Index just past the blank line that ends the header section, or -1 when there is none. */
function headerSectionEnd(raw: Buffer): number {
  if (raw[0] === LF) return 1;
  if (raw[0] === CR && raw[1] === LF) return 2;
  for (let i = raw.indexOf(LF); i >= 0; i = raw.indexOf(LF, i + 1)) {
    if (raw[i + 1] === LF) return i + 2;
    if (raw[i + 1] === CR && raw[i + 2] === LF) return i + 3;
  }
  return -1;
}

/**
 * What mailauth is given for `raw`. Its DKIM step streams the whole message through a
 * byte-at-a-time parser (about a tenth of a millisecond of the event loop for 10 KB), yet a body
 * is only hashed for a signature: DKIM-Signature, and ARC-Message-Signature for ARC. SPF and DMARC
 * read the envelope and the header fields. So a message whose header section names neither gets the
 * same verdicts and the same Authentication-Results from its header section alone, blank line
 * included (as mailauth finds it: bare LFs count as line ends). A header section naming either
 * (anywhere, even in a value) or a message with no blank line is given whole.
 */
export function authenticationInput(raw: Buffer): Buffer {
  const end = headerSectionEnd(raw);
  if (end < 0 || end === raw.length) return raw;
  return BODY_SIGNATURE.test(raw.toString('latin1', 0, end)) ? raw : raw.subarray(0, end);
}

/**
 * How long the verdicts of an unsigned message are reused for another with the same envelope and
 * the same author fields (verdictKey). Short, and well below the DNS answers' DNS_CACHE_TTL_MS: a
 * verdict is only ever as old as the answers it was made from, plus this.
 */
export const VERDICT_CACHE_TTL_MS = 10_000;
const VERDICT_CACHE_MAX = 10_000;

/**
 * Header fields whose content the verdicts of unsigned mail do not depend on: mailauth's DKIM and
 * ARC steps read From and, for the null sender, Return-Path; the Received chain it parses is only
 * used with trustReceived (off) and is not part of AuthVerdict. Left out of the verdict key, so
 * mail that differs only in them (every message does, in Message-ID, Date, Received...) shares a
 * verdict.
 */
const PER_MESSAGE_FIELD =
  /^(?:to|cc|subject|date|message-id|mime-version|content-[a-z-]+|in-reply-to|references|reply-to|received|received-spf|authentication-results|delivered-to|x-[a-z0-9-]+|list-[a-z-]+|user-agent|thread-[a-z-]+|importance|precedence|feedback-id)[ \t]*:/i;

/**
 * What the verdicts of an unsigned message depend on, as one string: our name, the client's
 * address and HELO, the envelope sender, and the header section without the fields above and
 * their folded lines (a line starting with a space or a tab, which mailauth appends to the field
 * before it as well). Any line that is not plainly one of those stays in: keeping more than
 * mailauth reads only costs cache hits, never a wrong verdict. Null for the null sender (mailauth
 * then reads Return-Path).
 */
function verdictKey(input: AuthInput, authservId: string, head: Buffer): string | null {
  if (input.sender === '') return null;
  const kept: string[] = [];
  let dropping = false;
  for (const line of head.toString('latin1').split('\n')) {
    if (dropping && (line.startsWith(' ') || line.startsWith('\t'))) continue;
    dropping = PER_MESSAGE_FIELD.test(line);
    if (!dropping) kept.push(line);
  }
  return [authservId, input.ip, input.helo, input.sender, ...kept].join('\n');
}

/** Verdicts reused (verdictKey), per resolver: tests with their own DNS servers do not share them. */
const verdictCaches = new WeakMap<DNSResolver, Map<string, { until: number; verdict: AuthVerdict }>>();

/** A verdict built from definite DNS answers only: one with a temporary failure in it is not reused. */
function definite(v: AuthVerdict): boolean {
  return ![v.spf, v.dkim, v.dmarc.result, v.arc].some((r) => r === 'temperror');
}

/**
 * Runs every check (see runChecks). Unsigned mail from the same client, envelope sender and author
 * as a message checked in the last VERDICT_CACHE_TTL_MS gets that message's verdicts (the same
 * object, read only): they are made from the same inputs and the same cached DNS answers. A sender
 * sending a burst (notifications, an agent replying in a thread) is checked once per burst.
 */
export async function authenticateInbound(input: AuthInput, authservId: string, resolver: DNSResolver): Promise<{ verdict: AuthVerdict; error: string | null }> {
  const checked = authenticationInput(input.raw);
  const key = checked === input.raw ? null : verdictKey(input, authservId, checked);
  let cache = verdictCaches.get(resolver);
  if (!cache) {
    cache = new Map();
    verdictCaches.set(resolver, cache);
  }
  const now = Date.now();
  const hit = key === null ? undefined : cache.get(key);
  if (hit && hit.until > now) return { verdict: hit.verdict, error: null };
  const result = await runChecks({ ...input, raw: checked }, authservId, resolver);
  if (key !== null && result.error === null && definite(result.verdict)) {
    if (cache.size >= VERDICT_CACHE_MAX) cache.clear();
    cache.set(key, { until: now + VERDICT_CACHE_TTL_MS, verdict: result.verdict });
  }
  return result;
}

/**
 * Runs every check. A failure inside mailauth (not a failing verdict: a bug or an exhausted
 * resource) yields temperror verdicts, with the error's message, rather than refusing mail that
 * may well be legitimate. Runs on the event loop or in an inspection worker (protocols/smtp).
 */
async function runChecks(input: AuthInput, authservId: string, resolver: DNSResolver): Promise<{ verdict: AuthVerdict; error: string | null }> {
  try {
    const { authenticate } = await loadMailauth();
    const result = await authenticate(input.raw, {
      ip: input.ip,
      helo: input.helo,
      sender: input.sender,
      mta: authservId,
      resolver,
      disableBimi: true,
      trustReceived: false,
    });
    const headerValue = authResultsValue(result.headers) ?? `${authservId}; none`;
    const dmarc = result.dmarc;
    return {
      verdict: {
        spf: result.spf ? result.spf.status.result : 'none',
        dkim: dkimSummary(result),
        dmarc: dmarc ? { result: dmarc.status.result, policy: dmarc.policy ?? null } : { result: 'none', policy: null },
        arc: result.arc ? result.arc.status.result : 'none',
        headerValue,
        summary: headerValue.replace(/\r\n[ \t]+/g, ' '),
      },
      error: null,
    };
  } catch (err) {
    const value = `${authservId}; spf=temperror; dkim=temperror; dmarc=temperror; arc=temperror`;
    return {
      verdict: { spf: 'temperror', dkim: 'temperror', dmarc: { result: 'temperror', policy: null }, arc: 'temperror', headerValue: value, summary: value },
      error: (err as Error).message,
    };
  }
}
