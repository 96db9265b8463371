// The HTTP server: Fastify with the spec's envelope on every answer, X-Request-Id and
// Cache-Control on every response, and the operation routes under /api/v1.
import { executionAsyncResource } from 'node:async_hooks';
import Fastify, { type FastifyInstance } from 'fastify';
import { AppError } from '../../core/errors.ts';
import { randomString } from '../../core/ids.ts';
import type { Services } from '../../services/index.ts';
import { Contract, loadSpec } from './contract.ts';
import { errorBody } from './errors.ts';
import { RateLimiter } from './rate-limit.ts';
import { sendError, type RouteDeps } from './route.ts';
import { registerDomainRoutes } from './routes/domains.ts';
import { registerMailboxRoutes } from './routes/mailboxes.ts';
import { registerFilterRoutes } from './routes/filters.ts';
import { registerAccountRoutes } from './routes/mailbox/account.ts';
import { registerMessageRoutes } from './routes/mailbox/messages.ts';
import { registerFolderRoutes } from './routes/mailbox/folders.ts';
import { registerThreadRoutes } from './routes/mailbox/threads.ts';
import { registerInboxLogRoutes } from './routes/inbox-logs.ts';
import { registerMailboxSendRoutes } from './routes/mailbox/send.ts';
import { registerSendingRoutes } from './routes/sending.ts';
import { registerWebhookRoutes } from './routes/webhooks.ts';
import { registerEventRoutes } from './routes/mailbox/events.ts';
import { registerSyncRoutes } from './routes/mailbox/sync.ts';
import { registerSubmissionRoutes } from './routes/mailbox/submissions.ts';
import { registerEmailLogRoutes } from './routes/email-logs.ts';
import { registerProviderRoutes } from './routes/providers.ts';

export const API_BASE = '/api/v1';

// process.nextTick (about seven calls per HTTP request inside Node's http and streams) builds each
// tick from an object literal with symbol keys. V8 keeps that literal's hidden classes only while
// an object uses them, and a tick lives for microseconds: a full GC that finds none alive collects
// them, and the literal's feedback then turns megamorphic for the life of the process, so every
// later nextTick defines its properties through the V8 runtime (measured: 40 ns -> 400-600 ns a
// call, 3-5 µs of CPU per request). Whether and when that happened varied from run to run. One
// tick object held for the process's lifetime keeps those hidden classes alive. This runs when the
// module is first evaluated, before the start-up work (schemas, store) that makes full GCs.
let heldTick: object | undefined;
process.nextTick(() => {
  // Inside a tick's callback, the current async resource is the tick object itself.
  heldTick ??= executionAsyncResource();
});

let appContract: Contract | null = null;
/** Compiling the spec's schemas takes a moment; every server in the process shares one contract. */
export function appSpecContract(): Contract {
  appContract ??= new Contract(loadSpec('openapi-app.json'), 'app');
  return appContract;
}

let sendingContract: Contract | null = null;
/** openapi-sending.json: the Sending API shares the server and /api/v1 (its paths do not collide). */
export function sendingSpecContract(): Contract {
  sendingContract ??= new Contract(loadSpec('openapi-sending.json'), 'sending');
  return sendingContract;
}

export async function buildHttpServer(services: Services): Promise<FastifyInstance> {
  const config = services.config;
  const app = Fastify({
    logger: false,
    bodyLimit: config.bodyLimitBytes,
    genReqId: () => `req_${randomString(24)}`,
    requestIdHeader: false,
    routerOptions: { ignoreTrailingSlash: true },
    trustProxy: false,
  });

  // A callback hook, not an async one: no promise and no extra turn per request.
  app.addHook('onRequest', (req, reply, done) => {
    reply.header('X-Request-Id', req.id);
    reply.header('Cache-Control', 'no-store');
    done();
  });

  // JSON bodies: an empty body is "no body"; invalid JSON is a 400 in the spec's envelope.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/json', 'application/*+json'], { parseAs: 'string' }, (_req, text, done) => {
    const s = String(text);
    if (s.trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(s));
    } catch {
      done(new AppError('invalid_parameter', 'Request body is not valid JSON'), undefined);
    }
  });
  // Anything else arrives as bytes; JSON routes refuse it, upload routes take it.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof AppError) return sendError(reply, req.id, err);
    const code = (err as { code?: string }).code;
    if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, req.id, new AppError('payload_too_large', `Request body exceeds ${req.routeOptions.bodyLimit ?? config.bodyLimitBytes} bytes`));
    if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendError(reply, req.id, new AppError('invalid_parameter', 'Unsupported Content-Type'));
    if (code?.startsWith('FST_ERR_CTP') || (err as { statusCode?: number }).statusCode === 400) {
      return sendError(reply, req.id, new AppError('invalid_parameter', 'Malformed request'));
    }
    services.log.error({ event: 'http.internal_error', request_id: req.id, method: req.method, route: req.routeOptions.url, err: { message: (err as Error).message, stack: (err as Error).stack } });
    return reply.code(500).type('application/json').send(errorBody(req.id, 'internal_error', 'Internal server error'));
  });

  app.setNotFoundHandler((req, reply) => reply.code(404).type('application/json').send(errorBody(req.id, 'not_found', `No route ${req.method} ${req.url.split('?')[0]}`)));

  const deps: RouteDeps = {
    app,
    contract: appSpecContract(),
    sendingContract: sendingSpecContract(),
    services,
    limiter: new RateLimiter(config.rateLimits.windowSeconds, () => services.clock.now()),
    basePath: API_BASE,
    rateLimits: config.rateLimits,
  };
  registerDomainRoutes(deps);
  registerFilterRoutes(deps);
  registerMailboxRoutes(deps);
  registerAccountRoutes(deps);
  registerMessageRoutes(deps);
  registerFolderRoutes(deps);
  registerThreadRoutes(deps);
  registerInboxLogRoutes(deps);
  registerMailboxSendRoutes(deps);
  registerSendingRoutes(deps);
  registerWebhookRoutes(deps);
  registerEventRoutes(deps);
  registerSyncRoutes(deps);
  registerSubmissionRoutes(deps);
  registerEmailLogRoutes(deps);
  registerProviderRoutes(deps);
  // Open SSE streams would hold close() forever: end them first.
  app.addHook('preClose', async () => services.realtime.closeAll());
  return app;
}
