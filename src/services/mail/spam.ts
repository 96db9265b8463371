// Spam classification of inbound mail. Built in: a documented additive score from the sender
// authentication verdicts and a few header rules (SPAM_RULES below); a message scoring at or above
// MAILMUX_SPAM_THRESHOLD goes to the spam folder. With MAILMUX_RSPAMD_URL set, rspamd's /checkv2
// answer replaces the built-in score: its score is stored and its action decides (reject refuses
// the message, soft reject defers it, add header / rewrite subject mean spam, anything else inbox).
// If rspamd cannot be reached the built-in score applies, so mail keeps flowing.
import http from 'node:http';
import https from 'node:https';
import { readHeaderBlock } from '../../mime/header-block.ts';
import { decodeHeaderText, parseAddresses, parseDate, type ParsedAddress } from '../../mime/header-values.ts';
import { splitAddress } from '../../mime/addresses.ts';
import type { ParsedMessage } from '../../mime/parse.ts';
import type { ServiceContext } from '../context.ts';
import type { AuthVerdict } from './inbound-auth.ts';

/** The built-in rules and their weights. Positive weights only: nothing here vouches for a message. */
export const SPAM_RULES = {
  SPF_FAIL: { score: 3.5, description: 'SPF fail: the client is not allowed to send for the MAIL FROM domain' },
  SPF_SOFTFAIL: { score: 1.5, description: 'SPF softfail (~all)' },
  DKIM_FAIL: { score: 2.0, description: 'DKIM signatures present and none verifies' },
  DMARC_FAIL_REJECT: { score: 6.0, description: 'DMARC fail and the From domain asks for p=reject' },
  DMARC_FAIL_QUARANTINE: { score: 6.0, description: 'DMARC fail and the From domain asks for p=quarantine (the spam folder)' },
  DMARC_FAIL_NONE: { score: 0.5, description: 'DMARC fail with p=none (monitoring only)' },
  MISSING_FROM: { score: 2.0, description: 'No usable From address' },
  MISSING_DATE: { score: 1.0, description: 'No Date header (RFC 5322 requires one)' },
  MISSING_MESSAGE_ID: { score: 1.0, description: 'No Message-ID header' },
  MISSING_SUBJECT: { score: 0.5, description: 'No Subject header or an empty one' },
  DATE_IN_FUTURE: { score: 1.0, description: 'Date more than 24 hours ahead of arrival' },
  FROM_REPLYTO_DIFFER: { score: 1.0, description: 'Reply-To domain differs from the From domain' },
  SUBJECT_ALL_CAPS: { score: 1.5, description: 'Subject with at least 8 letters, all capitals' },
  FROM_NAME_HAS_OTHER_ADDRESS: { score: 2.0, description: 'From display name holds an address at another domain (spoofing)' },
} as const;
export type SpamRuleName = keyof typeof SPAM_RULES;

/** Time allowed for one rspamd check before falling back to the built-in score. */
export const RSPAMD_TIMEOUT_MS = 15_000;
/** Largest rspamd answer read (its JSON lists symbols; a few KB in practice). */
export const RSPAMD_RESPONSE_MAX_BYTES = 1024 * 1024;
const FUTURE_SLACK_MS = 24 * 3_600_000;
const CAPS_MIN_LETTERS = 8;

export interface HeaderFacts {
  from: ParsedAddress | null;
  fromDisplayName: string | null;
  replyTo: ParsedAddress[];
  subject: string | null;
  hasDate: boolean;
  sentAtMs: number | null;
  hasMessageId: boolean;
}

/** The top-level header fields the rules read (bounded by the MIME header reader's limits). */
export function headerFacts(raw: Buffer): HeaderFacts {
  return factsOf(readHeaderBlock(raw, 0, raw.length, false).fields);
}

/**
 * The same facts from the parse of the message about to be stored, without reading its header
 * block again: from the parse's top-level field list (first occurrence of each name, as the header
 * reader keeps them). Only when that parse found nothing wrong, so the list is complete and no value
 * was cut; otherwise null, and the caller reads the raw message (headerFacts).
 */
export function headerFactsFromParse(parsed: Pick<ParsedMessage, 'headers' | 'problems'>): HeaderFacts | null {
  if (parsed.problems.length > 0) return null;
  const fields = new Map<string, string>();
  for (const { name, value } of parsed.headers) {
    const lower = name.toLowerCase();
    if (!fields.has(lower)) fields.set(lower, value);
  }
  return factsOf(fields);
}

function factsOf(fields: ReadonlyMap<string, string>): HeaderFacts {
  const problems = new Set<string>();
  const from = parseAddresses(fields.get('from'), problems, 'from')[0] ?? null;
  const subjectRaw = fields.get('subject');
  const date = fields.get('date');
  const sentAt = parseDate(date);
  return {
    from,
    fromDisplayName: from?.name ? decodeHeaderText(from.name) : null,
    replyTo: parseAddresses(fields.get('reply-to'), problems, 'reply-to'),
    subject: subjectRaw === undefined ? null : decodeHeaderText(subjectRaw),
    hasDate: date !== undefined,
    sentAtMs: sentAt === null ? null : Date.parse(sentAt),
    hasMessageId: fields.has('message-id'),
  };
}

const domainOf = (email: string): string => (splitAddress(email.toLowerCase())?.domain ?? '').replace(/\.$/, '');

/** The rules a message hits; its score is the sum of their weights. */
export function builtinRules(facts: HeaderFacts, auth: Pick<AuthVerdict, 'spf' | 'dkim' | 'dmarc'> | null, now: number): SpamRuleName[] {
  const hits: SpamRuleName[] = [];
  if (auth) {
    if (auth.spf === 'fail') hits.push('SPF_FAIL');
    else if (auth.spf === 'softfail') hits.push('SPF_SOFTFAIL');
    if (auth.dkim === 'fail') hits.push('DKIM_FAIL');
    if (auth.dmarc.result === 'fail') {
      const policy = (auth.dmarc.policy ?? 'none').toLowerCase();
      hits.push(policy === 'reject' ? 'DMARC_FAIL_REJECT' : policy === 'quarantine' ? 'DMARC_FAIL_QUARANTINE' : 'DMARC_FAIL_NONE');
    }
  }
  if (!facts.from) hits.push('MISSING_FROM');
  if (!facts.hasDate) hits.push('MISSING_DATE');
  else if (facts.sentAtMs !== null && facts.sentAtMs > now + FUTURE_SLACK_MS) hits.push('DATE_IN_FUTURE');
  if (!facts.hasMessageId) hits.push('MISSING_MESSAGE_ID');
  const subject = facts.subject?.trim() ?? '';
  if (subject === '') hits.push('MISSING_SUBJECT');
  const letters = subject.replace(/[^\p{L}]/gu, '');
  if (letters.length >= CAPS_MIN_LETTERS && letters === letters.toUpperCase() && letters !== letters.toLowerCase()) hits.push('SUBJECT_ALL_CAPS');
  if (facts.from) {
    const fromDomain = domainOf(facts.from.email);
    if (facts.replyTo.some((r) => domainOf(r.email) !== fromDomain)) hits.push('FROM_REPLYTO_DIFFER');
    const inName = facts.fromDisplayName?.match(/[^\s<>"'@]+@[a-z0-9.-]+\.[a-z]{2,}/i)?.[0];
    if (inName && domainOf(inName) !== fromDomain) hits.push('FROM_NAME_HAS_OTHER_ADDRESS');
  }
  return hits;
}

export function scoreOf(hits: SpamRuleName[]): number {
  return Math.round(hits.reduce((sum, name) => sum + SPAM_RULES[name].score, 0) * 100) / 100;
}

/** inbox / spam folder / refuse (550) / try later (451). */
export type SpamAction = 'inbox' | 'spam' | 'reject' | 'defer';

export interface SpamVerdict {
  action: SpamAction;
  isSpam: boolean;
  score: number;
  source: 'builtin' | 'rspamd';
  /** Rule or rspamd symbol names that contributed. */
  rules: string[];
}

export interface SpamInput {
  raw: Buffer;
  /** The parse of the message as it will be stored, when the caller has it: its header facts are reused. */
  parsed?: Pick<ParsedMessage, 'headers' | 'problems'>;
  auth: AuthVerdict | null;
  ip: string;
  helo: string;
  sender: string;
  recipients: string[];
  queueId: string;
}

interface RspamdAnswer {
  score?: unknown;
  action?: unknown;
  symbols?: unknown;
}

/** rspamd actions (https://rspamd.com/doc/architecture/protocol.html) to ours. */
function rspamdAction(action: string): SpamAction {
  switch (action) {
    case 'reject':
      return 'reject';
    case 'soft reject':
      return 'defer';
    case 'add header':
    case 'rewrite subject':
      return 'spam';
    default:
      // 'no action' and 'greylist' (Mailmux does not greylist).
      return 'inbox';
  }
}

export class SpamService {
  private readonly ctx: ServiceContext;
  constructor(ctx: ServiceContext) {
    this.ctx = ctx;
  }

  builtin(raw: Buffer, auth: AuthVerdict | null, parsed?: SpamInput['parsed']): SpamVerdict {
    const facts = (parsed && headerFactsFromParse(parsed)) ?? headerFacts(raw);
    const hits = builtinRules(facts, auth, this.ctx.clock.now());
    const score = scoreOf(hits);
    const isSpam = score >= this.ctx.config.spamThreshold;
    return { action: isSpam ? 'spam' : 'inbox', isSpam, score, source: 'builtin', rules: hits };
  }

  async classify(input: SpamInput): Promise<SpamVerdict> {
    const url = this.ctx.config.rspamdUrl;
    if (url) {
      try {
        return await this.rspamd(url, input);
      } catch (err) {
        this.ctx.log.warn({ event: 'spam.rspamd_unavailable', queue_id: input.queueId, err: (err as Error).message });
      }
    }
    return this.builtin(input.raw, input.auth, input.parsed);
  }

  private async rspamd(base: string, input: SpamInput): Promise<SpamVerdict> {
    // rspamd wants one Rcpt header per recipient, which fetch would fold into one: raw headers here.
    const headers: string[] = ['Content-Type', 'message/rfc822', 'IP', input.ip, 'Helo', input.helo, 'Queue-Id', input.queueId, 'MTA-Name', this.ctx.config.hostname];
    if (input.sender !== '') headers.push('From', input.sender);
    for (const r of input.recipients) headers.push('Rcpt', r);
    const answer = await postJson(new URL('/checkv2', `${base}/`), headers, input.raw);
    const score = typeof answer.score === 'number' && Number.isFinite(answer.score) ? Math.round(answer.score * 100) / 100 : null;
    if (score === null || typeof answer.action !== 'string') throw new Error('rspamd answer has no score or action');
    const action = rspamdAction(answer.action);
    const symbols = answer.symbols && typeof answer.symbols === 'object' ? Object.keys(answer.symbols as object) : [];
    return { action, isSpam: action === 'spam' || action === 'reject', score, source: 'rspamd', rules: symbols };
  }
}

function postJson(url: URL, headers: string[], body: Buffer): Promise<RspamdAnswer> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    // Node adds no Host header when headers are given as a raw list.
    const raw = ['Host', url.host, ...headers, 'Content-Length', String(body.byteLength)];
    const req = client.request(url, { method: 'POST', headers: raw, timeout: RSPAMD_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.byteLength;
        if (size > RSPAMD_RESPONSE_MAX_BYTES) {
          req.destroy(new Error('rspamd answer too large'));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`rspamd answered HTTP ${res.statusCode}`));
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as RspamdAnswer);
        } catch {
          reject(new Error('rspamd answer is not JSON'));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('rspamd timed out')));
    req.on('error', reject);
    req.end(body);
  });
}
