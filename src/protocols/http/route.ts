// One way to declare an operation. The route layer does, in order: request id, authentication and
// surface check, rate limit, contract validation of query and body, Idempotency-Key replay, the
// handler, the success envelope, ETag / If-None-Match, and the error envelope for anything thrown.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, type ErrorCode } from '../../core/errors.ts';
import { iso } from '../../core/clock.ts';
import { IDEMPOTENCY_KEY_MAX, IDEMPOTENCY_TTL_MS } from '../../config/limits.ts';
import type { PrefetchedMailbox, Principal } from '../../services/credentials.ts';
import type { Services } from '../../services/index.ts';
import { issuesOf, type Contract } from './contract.ts';
import { errorBody, STATUS_OF } from './errors.ts';
import type { RateLimiter } from './rate-limit.ts';

export type Surface = 'management' | 'mailbox' | 'sending';
export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface HandlerContext<P extends Principal | null = Principal> {
  principal: P;
  params: Record<string, string>;
  query: Record<string, any>;
  body: any;
  headers: FastifyRequest['headers'];
  requestId: string;
  /** With `prefetchMailbox`: the mailbox the path names, read with the credential. */
  prefetchedMailbox?: PrefetchedMailbox;
  /** Throws 409 conflict (echoing the current ETag) when If-Match is present and differs. */
  checkIfMatch(currentEtag: string): void;
}

export interface HandlerResult {
  status?: number;
  data?: unknown;
  /** `data` already serialised with JSON.stringify (say, to hash it for the ETag): sent as is instead. */
  dataJson?: string;
  pagination?: { has_more: boolean; next_cursor?: string };
  meta?: Record<string, unknown>;
  etag?: string;
  headers?: Record<string, string>;
  /** A non-JSON body (zone file, attachment bytes); sent as is. */
  raw?: { contentType: string; body: string | Buffer };
  /**
   * A long-lived response (SSE): the route takes the socket over. Headers already set (request id,
   * rate limits) are sent with `headers`; the function owns the response from then on.
   */
  stream?: { headers: Record<string, string>; start: (res: ServerResponse, req: IncomingMessage) => void };
}

export interface RouteDef<P extends Principal | null = Principal> {
  method: Method;
  /** The spec's path template, e.g. /domains/{public_id}. */
  path: string;
  surface: Surface;
  /** Accepts Idempotency-Key (the spec lists which operations do). */
  idempotent?: boolean;
  /**
   * Lets a request without a bearer token through when it carries its own proof (a download_token
   * query parameter); the handler must verify it. The principal is then null.
   */
  tokenAuth?: (query: Record<string, unknown>, headers: FastifyRequest['headers']) => boolean;
  /**
   * The document the operation belongs to (default `app`). `sending` uses openapi-sending.json and
   * its error rules: schema failures of the query or body are 422 validation_error with errors[].
   */
  spec?: 'app' | 'sending';
  /** Largest request body for this operation (default: the server's MAILMUX_BODY_LIMIT_BYTES). */
  bodyLimit?: number;
  /** The handler validates the JSON body itself (batch sends validate each message on its own). */
  ownBodyValidation?: boolean;
  /**
   * What an Idempotency-Key replay may show again. Secrets are shown once: the stored copy drops
   * them, so they never sit in the idempotency table and a replay does not reveal them twice.
   */
  redactForReplay?: (data: any) => unknown;
  /**
   * The path parameter naming a mailbox the handler reads first: it is read in the same query as
   * the credential (one round trip) and handed over as ctx.prefetchedMailbox.
   */
  prefetchMailbox?: string;
  /** Runs before contract validation: for the few semantic checks the spec wants as 422. */
  precheck?: (body: any) => void;
  /** May answer synchronously (a value, not a promise): the response then goes out in the same turn. */
  handler: (ctx: HandlerContext<P>) => HandlerResult | Promise<HandlerResult>;
}

export interface RouteDeps {
  app: FastifyInstance;
  contract: Contract;
  services: Services;
  limiter: RateLimiter;
  basePath: string;
  rateLimits: Record<Surface | 'unauthenticated', number>;
  /** openapi-sending.json, for routes with `spec: 'sending'`. */
  sendingContract?: Contract;
}

function toFastifyPath(path: string): string {
  return path.replaceAll(':', '::').replace(/\{([^}]+)\}/g, ':$1');
}

function bearer(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1] ?? null;
}

function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const obj = value as Record<string, unknown>;
  return `{${Object.keys(obj).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const bare = (t: string): string => t.trim().replace(/^W\//, '');
  return header.split(',').some((t) => t.trim() === '*' || bare(t) === bare(etag));
}

interface StoredResponse {
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

export function sendError(reply: FastifyReply, requestId: string, err: AppError): FastifyReply {
  const status = STATUS_OF[err.code];
  if (err.options.etag) reply.header('ETag', err.options.etag);
  if (err.options.retryAfterSeconds !== undefined) reply.header('Retry-After', String(err.options.retryAfterSeconds));
  return reply.code(status).type('application/json').send(errorBody(requestId, err.code, err.message, err.options));
}

export function defineRoute<P extends Principal | null>(deps: RouteDeps, def: RouteDef<P>): void {
  const sending = def.spec === 'sending';
  const contract = sending ? deps.sendingContract : deps.contract;
  if (!contract) throw new Error(`No contract for ${def.method} ${def.path}`);
  const op = contract.operation(def.method, def.path);
  // The Sending API answers schema failures with 422; the app API with 400.
  const schemaCode: ErrorCode = sending ? 'validation_error' : 'invalid_parameter';
  const wantsJsonBody = op.validateBody !== null;
  const credentials = deps.services.credentials;
  const limiter = deps.limiter;
  const surfaceLimit = deps.rateLimits[def.surface];
  const keyScope = `key:${def.surface}`;
  const prefetchParam = def.prefetchMailbox;

  // The request path runs synchronously as far as it can: with SQLite's fast read the credential
  // (and the prefetched mailbox) are read at once, and a handler that answers without awaiting is
  // sent in the same turn. Only a step that really waits (PostgreSQL, a transaction, an
  // Idempotency-Key claim, an async handler) takes a promise hop. Every check runs either way.
  // `inTurn`: called synchronously from the request's own dispatch (not after a wait).
  const authenticated = (req: FastifyRequest, reply: FastifyReply, token: string | null, principal: Principal | null, prefetchedMailbox: PrefetchedMailbox | undefined, inTurn: boolean): void | Promise<void> => {
    const requestId = req.id;
    const viaToken = !token && def.tokenAuth !== undefined && def.tokenAuth(req.query as Record<string, unknown>, req.headers);
    if (!principal && !viaToken) {
      const d = limiter.hit('ip', req.ip, deps.rateLimits.unauthenticated);
      setRateHeaders(reply, d);
      if (!d.allowed) fail('rate_limit_exceeded', 'Too many requests', { retryAfterSeconds: d.retryAfterSeconds });
      fail('authentication_required', token ? 'API key is invalid, revoked or its mailbox is not active' : 'Missing Authorization: Bearer <api key>');
    }
    const p = principal as Principal;
    if (principal) {
      const decision = limiter.hit(keyScope, p.keyId, surfaceLimit);
      setRateHeaders(reply, decision);
      if (!decision.allowed) fail('rate_limit_exceeded', 'Rate limit exceeded', { retryAfterSeconds: decision.retryAfterSeconds });
      if (def.surface === 'management' && p.kind !== 'root') fail('insufficient_permissions', 'Management API requires a root key (smx_root_…)');
      if (def.surface === 'mailbox' && p.kind !== 'mailbox') fail('insufficient_permissions', 'Root key used on a mailbox-scoped endpoint; a mailbox API key is required');
      if (def.surface === 'sending' && p.kind !== 'mailbox') fail('insufficient_permissions', 'The Sending API requires a mailbox key (smx_mbx_…)');
      // mailbox_id targeting: a mailbox key grants exactly one mailbox.
      const target = (req.query as Record<string, unknown>).mailbox_id;
      if (def.surface === 'mailbox' && p.kind === 'mailbox' && typeof target === 'string' && target !== '' && target !== p.mailboxId) {
        fail('insufficient_permissions', 'mailbox_id is outside this credential\'s grant', { param: 'mailbox_id' });
      }
    } else {
      const d = limiter.hit('ip', req.ip, deps.rateLimits.unauthenticated);
      setRateHeaders(reply, d);
      if (!d.allowed) fail('rate_limit_exceeded', 'Too many requests', { retryAfterSeconds: d.retryAfterSeconds });
    }

    // Contract validation.
    const query = { ...(req.query as Record<string, unknown>) };
    for (const name of op.requiredQuery) {
      if (query[name] === undefined || query[name] === '') {
        if (sending) fail(schemaCode, `Query parameter ${name} is required`, { errors: [{ field: name, code: 'invalid_type', message: 'Required' }] });
        fail('missing_parameter', `Query parameter ${name} is required`, { param: name });
      }
    }
    if (op.validateQuery && !op.validateQuery(query)) {
      const errors = issuesOf(op.validateQuery.errors);
      fail(schemaCode, `Invalid query parameter ${errors[0]?.field ?? ''}`.trim(), { errors });
    }
    let body: unknown = req.body;
    if (wantsJsonBody) {
      if (Buffer.isBuffer(body)) fail('invalid_parameter', 'Content-Type must be application/json');
      if (body === undefined || body === null) {
        if (op.bodyRequired) fail(schemaCode, 'A JSON request body is required', { errors: [{ field: '(body)', code: 'invalid_type', message: 'Required' }] });
        body = {};
      }
      def.precheck?.(body);
      if (!def.ownBodyValidation && !op.validateBody!(body)) {
        const errors = issuesOf(op.validateBody!.errors);
        fail(schemaCode, 'Request body failed validation', { errors });
      }
    }

    const ctx: HandlerContext<P> = {
      principal: p as P,
      params: req.params as Record<string, string>,
      query,
      body,
      headers: req.headers,
      requestId,
      // Always present (undefined when not prefetched): one object shape for every request.
      prefetchedMailbox,
      checkIfMatch(currentEtag: string) {
        const h = req.headers['if-match'];
        if (typeof h === 'string' && !etagMatches(h, currentEtag)) {
          throw new AppError('conflict', 'If-Match does not match the current ETag', { etag: currentEtag });
        }
      },
    };

    // Idempotency-Key.
    const idemKey = req.headers['idempotency-key'];
    if (def.idempotent && typeof idemKey === 'string') {
      if (idemKey.length === 0 || idemKey.length > IDEMPOTENCY_KEY_MAX) fail('invalid_parameter', `Idempotency-Key must be 1 to ${IDEMPOTENCY_KEY_MAX} characters`, { param: 'Idempotency-Key' });
      return runIdempotent(req, reply, ctx, p, idemKey);
    }

    const result = def.handler(ctx);
    if (result instanceof Promise) return result.then((r) => send(req, reply, r, false));
    // Answered in the request's own dispatch: its bytes go out with the rest of this turn's (below).
    // After a wait the handler's promise is pending in Fastify, which sends when it settles: at once.
    send(req, reply, result, inTurn);
  };

  // With an Idempotency-Key: claim it, replay a finished request, or run the handler and store its answer.
  const runIdempotent = async (req: FastifyRequest, reply: FastifyReply, ctx: HandlerContext<P>, p: Principal, idemKey: string): Promise<void> => {
    const owner = p.kind === 'mailbox' && def.surface !== 'management' ? `mailbox:${p.mailboxId}` : `team:${p.teamId}`;
    const scope = `${owner}:${def.method} ${def.path}`;
    const body = ctx.body;
    // Upload bodies are bytes: fingerprint their digest, not a JSON rendering of every byte.
    const bodyPrint = Buffer.isBuffer(body) ? `bytes:${createHash('sha256').update(body).digest('hex')}` : canonicalJson(body ?? null);
    const fingerprint = createHash('sha256').update(`${def.method} ${req.url}\n${bodyPrint}`).digest('hex');
    const now = deps.services.clock.now();
    const existing = await deps.services.store.idempotency.claim({
      scope,
      key: idemKey,
      fingerprint,
      state: 'in_flight',
      status_code: null,
      response: null,
      created_at: iso(now),
      expires_at: iso(now + IDEMPOTENCY_TTL_MS),
    });
    if (existing) {
      if (existing.fingerprint !== fingerprint) fail('idempotency_conflict', 'Idempotency-Key was already used with a different request');
      if (existing.state !== 'done' || existing.response === null) fail('idempotency_conflict', 'A request with this Idempotency-Key is still in progress; retry shortly');
      const stored = JSON.parse(existing.response as string) as StoredResponse;
      reply.header('Idempotent-Replayed', 'true');
      // The replay is the original body, request id included; X-Request-Id must equal meta.request_id.
      const originalId = (stored.body as { meta?: { request_id?: unknown } } | null)?.meta?.request_id;
      if (typeof originalId === 'string') reply.header('X-Request-Id', originalId);
      for (const [k, v] of Object.entries(stored.headers)) reply.header(k, v);
      reply.code(stored.status).type('application/json').send(stored.body);
      return;
    }

    let result: HandlerResult;
    try {
      result = await def.handler(ctx);
    } catch (err) {
      if (err instanceof AppError && STATUS_OF[err.code] < 500) {
        const status = STATUS_OF[err.code];
        const bodyOut = errorBody(req.id, err.code, err.message, err.options);
        await deps.services.store.idempotency.complete(scope, idemKey, status, JSON.stringify({ status, body: bodyOut, headers: {} }));
      } else {
        await deps.services.store.idempotency.release(scope, idemKey);
      }
      throw err;
    }
    if (!result.stream && !result.raw) {
      const status = result.status ?? 200;
      const headers: Record<string, string> = { ...(result.headers ?? {}) };
      if (result.etag) headers.ETag = result.etag;
      const data = result.dataJson !== undefined ? JSON.parse(result.dataJson) : (result.data ?? null);
      const out = envelopeObject(req.id, data, result);
      const stored = def.redactForReplay ? { ...out, data: def.redactForReplay(out.data) } : out;
      await deps.services.store.idempotency.complete(scope, idemKey, status, JSON.stringify({ status, body: stored, headers }));
    }
    send(req, reply, result, false);
  };

  // The success answer: headers, then the envelope (serialised here, once), a raw body or a stream.
  // `inTurn`: answered synchronously in the dispatch of a request received in this event-loop turn.
  const send = (req: FastifyRequest, reply: FastifyReply, result: HandlerResult, inTurn: boolean): void => {
    const status = result.status ?? 200;
    if (result.headers) for (const k of Object.keys(result.headers)) reply.header(k, result.headers[k]);
    if (result.etag) reply.header('ETag', result.etag);
    if (result.stream) {
      reply.hijack();
      const res = reply.raw;
      const sent: Record<string, string | number | string[]> = {};
      for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) sent[k] = v;
      res.writeHead(status, { ...sent, ...result.stream.headers });
      result.stream.start(res, req.raw);
      return;
    }
    if (def.method === 'GET' && result.etag && etagMatches(req.headers['if-none-match'], result.etag)) {
      reply.code(304).send();
      return;
    }
    if (result.raw) {
      reply.code(status).type(result.raw.contentType).send(result.raw.body);
      return;
    }
    // The same bytes JSON.stringify(envelopeObject(...)) gives, without serialising data twice
    // (a handler that hashed its JSON for the ETag hands it over as dataJson).
    const dataJson = result.dataJson ?? JSON.stringify(result.data ?? null);
    const meta = result.meta ? JSON.stringify({ request_id: req.id, ...result.meta }) : `{"request_id":${JSON.stringify(req.id)}}`;
    const pagination = result.pagination ? `,"pagination":${JSON.stringify(result.pagination)}` : '';
    const body = `{"ok":true,"data":${dataJson},"meta":${meta}${pagination}}`;
    reply.code(status).type(JSON_UTF8);
    if (inTurn) sendAtEndOfTurn(reply, body);
    else reply.send(body);
  };

  deps.app.route({
    method: def.method,
    url: deps.basePath + toFastifyPath(def.path),
    ...(def.bodyLimit !== undefined ? { bodyLimit: def.bodyLimit } : {}),
    // Not an async function: it returns a promise only when a step had to wait (see above). The
    // credential is read in the request's own dispatch, synchronously: it may share this turn's
    // check for commits by other processes (sameTurn, store/fast-read.ts).
    handler: (req, reply) => {
      const token = bearer(req);
      if (token === null) return authenticated(req, reply, null, null, undefined, true);
      const prefetchId = prefetchParam !== undefined ? (req.params as Record<string, string | undefined>)[prefetchParam] : undefined;
      if (prefetchId !== undefined) {
        const r = credentials.authenticateWithMailboxNow(token, prefetchId, true);
        if (r instanceof Promise) return r.then((a) => authenticated(req, reply, token, a.principal, a.mailbox, false));
        return authenticated(req, reply, token, r.principal, r.mailbox, true);
      }
      const principal = credentials.authenticateNow(token, true);
      if (principal instanceof Promise) return principal.then((a) => authenticated(req, reply, token, a, undefined, false));
      return authenticated(req, reply, token, principal, undefined, true);
    },
  });
}

const JSON_UTF8 = 'application/json; charset=utf-8';

// Responses answered synchronously during one event-loop turn are written together when the turn's
// poll phase has dispatched every request it received (setImmediate runs right after it), one write
// per response as before, back to back. Written one at a time between requests, each write had to
// wake the client's sleeping thread (in this VM a cross-CPU wake-up is most of a write's cost);
// written together, the later writes find it awake. The wait is the rest of the turn's dispatch
// (nothing when a turn holds one request). PostgreSQL's turn-batched reads answer the same way.
let turnReplies: FastifyReply[] = [];
let turnBodies: string[] = [];
let turnFlush: NodeJS.Immediate | null = null;

function flushTurn(): void {
  const replies = turnReplies;
  const bodies = turnBodies;
  turnReplies = [];
  turnBodies = [];
  turnFlush = null;
  for (let i = 0; i < replies.length; i++) {
    const reply = replies[i]!;
    try {
      reply.send(bodies[i]);
    } catch (err) {
      // Never an uncaught exception in an immediate, nor one reply's failure costing the others theirs.
      reply.raw.destroy(err as Error);
    }
  }
}

function sendAtEndOfTurn(reply: FastifyReply, body: string): void {
  turnReplies.push(reply);
  turnBodies.push(body);
  turnFlush ??= setImmediate(flushTurn);
}

function fail(code: ErrorCode, message: string, extra: ConstructorParameters<typeof AppError>[2] = {}): never {
  throw new AppError(code, message, extra);
}

/** The success envelope as an object (what is stored for an Idempotency-Key replay). */
function envelopeObject(requestId: string, data: unknown, result: HandlerResult): Record<string, unknown> {
  const out: Record<string, unknown> = { ok: true, data, meta: { request_id: requestId, ...(result.meta ?? {}) } };
  if (result.pagination) out.pagination = result.pagination;
  return out;
}

function setRateHeaders(reply: FastifyReply, d: { limit: number; remaining: number; resetAt: number }): void {
  reply.header('X-RateLimit-Limit', String(d.limit));
  reply.header('X-RateLimit-Remaining', String(d.remaining));
  reply.header('X-RateLimit-Reset', String(d.resetAt));
}

/** `limit` with the spec's default and bounds already validated by the contract. */
export function limitOf(query: Record<string, any>, fallback = 50): number {
  return typeof query.limit === 'number' ? query.limit : fallback;
}
