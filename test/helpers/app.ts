// An in-process Mailmux for HTTP tests: a real store on the chosen backend, the real services and
// the real Fastify server driven by inject(). Every response is validated against the spec.
import type { FastifyInstance } from 'fastify';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { openServices } from '../../src/app/app.ts';
import { buildHttpServer } from '../../src/protocols/http/server.ts';
import type { Services } from '../../src/services/index.ts';
import { silentLogger } from '../../src/services/context.ts';
import type { Clock } from '../../src/core/clock.ts';
import type { Backend } from './backends.ts';
import { ResponseValidator } from './openapi.ts';

export interface ApiResponse {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: any;
  text: string;
}

export interface TestApp {
  services: Services;
  http: FastifyInstance;
  config: Config;
  /** PostgreSQL: the suite's schema (its tables), for tests that read them directly. */
  pgSchema: string | undefined;
  rootKey: string;
  teamId: string;
  api(method: string, url: string, opts?: { token?: string | null; body?: unknown; rawBody?: string | Buffer; headers?: Record<string, string> }): Promise<ApiResponse>;
  close(): Promise<void>;
}

let validator: ResponseValidator | null = null;

/** The openapi-app.json validator the test client uses (for payloads outside JSON responses, e.g. SSE). */
export function appValidator(): ResponseValidator {
  validator ??= new ResponseValidator('openapi-app.json', '/api/v1');
  return validator;
}

let sendingValidatorInstance: ResponseValidator | null = null;

/** The openapi-sending.json validator: the Sending API shares /api/v1 with the app API. */
export function sendingValidator(): ResponseValidator {
  sendingValidatorInstance ??= new ResponseValidator('openapi-sending.json', '/api/v1');
  return sendingValidatorInstance;
}

export class MutableClock implements Clock {
  t: number;
  constructor(t = Date.now()) {
    this.t = t;
  }
  now(): number {
    return this.t;
  }
}

export async function startTestApp(backend: Backend, env: Record<string, string> = {}, opts: { clock?: Clock } = {}): Promise<TestApp> {
  const db = await backend.provision();
  const config = loadConfig({
    MAILMUX_DATA_DIR: db.dataDir,
    ...(db.databaseUrl ? { MAILMUX_DATABASE_URL: db.databaseUrl } : {}),
    MAILMUX_HOSTNAME: 'mx.mailmux.test',
    MAILMUX_DEFAULT_DOMAIN: 'agents.mailmux.test',
    MAILMUX_LOG_LEVEL: 'silent',
    ...env,
  });
  const { store, services } = await openServices(config, { log: silentLogger, ...(db.pgSchema ? { pgSchema: db.pgSchema } : {}), ...(opts.clock ? { clock: opts.clock } : {}) });
  const issued = await services.teams.bootstrap();
  if (!issued) throw new Error('expected an empty database');
  await services.domains.ensureDefaultDomain();
  await services.events.start();
  const http = await buildHttpServer(services);
  validator ??= new ResponseValidator('openapi-app.json', '/api/v1');
  const v = validator;
  return {
    services,
    http,
    config,
    pgSchema: db.pgSchema,
    rootKey: issued.secret,
    teamId: issued.teamId,
    async api(method, url, o = {}) {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      const token = o.token === undefined ? issued.secret : o.token;
      if (token !== null) headers.authorization = `Bearer ${token}`;
      let payload: string | Buffer | undefined = o.rawBody;
      if (o.body !== undefined) {
        payload = JSON.stringify(o.body);
        headers['content-type'] ??= 'application/json';
      }
      const res = await http.inject({ method: method as 'GET', url, headers, ...(payload !== undefined ? { payload } : {}) });
      const contentType = res.headers['content-type'] as string | undefined;
      const body = contentType?.includes('json') && res.body.length > 0 ? JSON.parse(res.body) : res.body;
      // Every answer carries the request id and no-store, success or error.
      const rid = res.headers['x-request-id'];
      if (typeof rid !== 'string' || !rid.startsWith('req_')) throw new Error(`${method} ${url}: missing X-Request-Id`);
      if (body && typeof body === 'object' && body.meta && body.meta.request_id !== rid) throw new Error(`${method} ${url}: meta.request_id differs from X-Request-Id`);
      if (v.match(method, url)) v.validate(method, url, res.statusCode, contentType, body);
      else if (sendingValidator().match(method, url)) sendingValidator().validate(method, url, res.statusCode, contentType, body);
      return { status: res.statusCode, headers: res.headers, body, text: res.body };
    },
    async close() {
      await http.close();
      await services.events.stop();
      await services.ingest.close();
      await store.close();
      await db.drop();
    },
  };
}
