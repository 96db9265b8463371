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
  handler: (ctx: HandlerContext<P>) => Promise<HandlerResult>;
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

  deps.app.route({
    method: def.method,
    url: deps.basePath + toFastifyPath(def.path),
    ...(def.bodyLimit !== undefined ? { bodyLimit: def.bodyLimit } : {}),
    handler: async (req, reply) => {
      const requestId = req.id;
      const fail = (code: ErrorCode, message: string, extra: ConstructorParameters<typeof AppError>[2] = {}): never => {
        throw new AppError(code, message, extra);
      };

      // Authentication and surface.
      const token = bearer(req);
      const prefetchId = def.prefetchMailbox !== undefined ? (req.params as Record<string, string | undefined>)[def.prefetchMailbox] : undefined;
      let principal: Principal | null = null;
      let prefetchedMailbox: PrefetchedMailbox | undefined;
      if (token && prefetchId !== undefined) {
        const r = await deps.services.credentials.authenticateWithMailbox(token, prefetchId);
        principal = r.principal;
        prefetchedMailbox = r.mailbox;
      } else if (token) {
        principal = await deps.services.credentials.authenticate(token);
      }
      const viaToken = !token && def.tokenAuth !== undefined && def.tokenAuth(req.query as Record<string, unknown>, req.headers);
      if (!principal && !viaToken) {
        const d = deps.limiter.hit(`ip:${req.ip}`, deps.rateLimits.unauthenticated);
        setRateHeaders(reply, d);
        if (!d.allowed) fail('rate_limit_exceeded', 'Too many requests', { retryAfterSeconds: d.retryAfterSeconds });
        fail('authentication_required', token ? 'API key is invalid, revoked or its mailbox is not active' : 'Missing Authorization: Bearer <api key>');
      }
      const p = principal as Principal;
      if (principal) {
        const decision = deps.limiter.hit(`key:${p.keyId}:${def.surface}`, deps.rateLimits[def.surface]);
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
        const d = deps.limiter.hit(`ip:${req.ip}`, deps.rateLimits.unauthenticated);
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

      // Idempotency-Key.
      const idemKey = req.headers['idempotency-key'];
      let idem: { scope: string; key: string } | null = null;
      if (def.idempotent && typeof idemKey === 'string') {
        if (idemKey.length === 0 || idemKey.length > IDEMPOTENCY_KEY_MAX) fail('invalid_parameter', `Idempotency-Key must be 1 to ${IDEMPOTENCY_KEY_MAX} characters`, { param: 'Idempotency-Key' });
        const owner = p.kind === 'mailbox' && def.surface !== 'management' ? `mailbox:${p.mailboxId}` : `team:${p.teamId}`;
        const scope = `${owner}:${def.method} ${def.path}`;
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
          return reply.code(stored.status).type('application/json').send(stored.body);
        }
        idem = { scope, key: idemKey };
      }

      const ctx: HandlerContext<P> = {
        principal: p as P,
        params: req.params as Record<string, string>,
        query,
        body,
        headers: req.headers,
        requestId,
        ...(prefetchedMailbox ? { prefetchedMailbox } : {}),
        checkIfMatch(currentEtag: string) {
          const h = req.headers['if-match'];
          if (typeof h === 'string' && !etagMatches(h, currentEtag)) {
            throw new AppError('conflict', 'If-Match does not match the current ETag', { etag: currentEtag });
          }
        },
      };

      let result: HandlerResult;
      try {
        result = await def.handler(ctx);
      } catch (err) {
        if (idem) {
          if (err instanceof AppError && STATUS_OF[err.code] < 500) {
            const status = STATUS_OF[err.code];
            const bodyOut = errorBody(requestId, err.code, err.message, err.options);
            await deps.services.store.idempotency.complete(idem.scope, idem.key, status, JSON.stringify({ status, body: bodyOut, headers: {} }));
          } else {
            await deps.services.store.idempotency.release(idem.scope, idem.key);
          }
        }
        throw err;
      }

      const status = result.status ?? 200;
      const headers: Record<string, string> = { ...(result.headers ?? {}) };
      if (result.etag) headers.ETag = result.etag;
      for (const [k, v] of Object.entries(headers)) reply.header(k, v);
      if (result.stream) {
        reply.hijack();
        const res = reply.raw;
        const sent: Record<string, string | number | string[]> = {};
        for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) sent[k] = v;
        res.writeHead(status, { ...sent, ...result.stream.headers });
        result.stream.start(res, req.raw);
        return reply;
      }
      if (result.raw) {
        if (def.method === 'GET' && result.etag && etagMatches(req.headers['if-none-match'], result.etag)) return reply.code(304).send();
        return reply.code(status).type(result.raw.contentType).send(result.raw.body);
      }
      const out: Record<string, unknown> = { ok: true, data: result.data ?? null, meta: { request_id: requestId, ...(result.meta ?? {}) } };
      if (result.pagination) out.pagination = result.pagination;
      if (idem) {
        const stored = def.redactForReplay ? { ...out, data: def.redactForReplay(out.data) } : out;
        await deps.services.store.idempotency.complete(idem.scope, idem.key, status, JSON.stringify({ status, body: stored, headers }));
      }
      if (def.method === 'GET' && result.etag && etagMatches(req.headers['if-none-match'], result.etag)) return reply.code(304).send();
      return reply.code(status).type('application/json').send(out);
    },
  });
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
