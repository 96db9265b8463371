// The real mailmux process for end-to-end tests: `node src/cli/main.ts …` spawned with a clean
// MAILMUX_* environment, its output collected, the serve banner parsed.
//
// PostgreSQL: the CLI takes no schema option, so a test database is selected through the
// connection URL itself. `pg` reads libpq's `options` URL parameter, so
// `postgres://…/db?options=-c%20search_path%3D<schema>` makes every connection of the process
// use a fresh schema that backends.ts created and drops (no CREATE DATABASE rights needed).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { Backend } from '../helpers/backends.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = 'src/cli/main.ts';
// A safety net for a hung process, generous for a loaded CI machine.
const WAIT_MS = 60_000;

export type Provisioned = Awaited<ReturnType<Backend['provision']>>;

/** MAILMUX_* variables that point the process at a provisioned database. */
export function storeEnv(db: Provisioned): Record<string, string> {
  const env: Record<string, string> = { MAILMUX_DATA_DIR: db.dataDir };
  if (db.databaseUrl) {
    const sep = db.databaseUrl.includes('?') ? '&' : '?';
    env.MAILMUX_DATABASE_URL = db.pgSchema ? `${db.databaseUrl}${sep}options=${encodeURIComponent(`-c search_path=${db.pgSchema}`)}` : db.databaseUrl;
  }
  return env;
}

/** The parent's environment without any MAILMUX_* variable, every listener on a free port, plus overrides. */
function childEnv(overrides: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('MAILMUX_')) env[k] = v;
  return {
    ...env,
    MAILMUX_HTTP_PORT: '0',
    MAILMUX_SMTP_PORT: '0',
    MAILMUX_SUBMISSION_PORT: '0',
    MAILMUX_SUBMISSIONS_PORT: '0',
    MAILMUX_IMAP_PORT: '0',
    MAILMUX_IMAPS_PORT: '0',
    MAILMUX_LISTEN_HOST: '127.0.0.1',
    MAILMUX_LOG_LEVEL: 'silent',
    ...overrides,
  };
}

function collect(child: ChildProcess): { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
  return { out: () => out, err: () => err };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Milliseconds between the process's last output and its exit. */
  quietMs: number;
}

/** Runs `mailmux <args>` to completion. */
export async function runCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  const io = collect(child);
  let lastOutput = Date.now();
  const touch = (): void => {
    lastOutput = Date.now();
  };
  child.stdout?.on('data', touch);
  child.stderr?.on('data', touch);
  const timer = setTimeout(() => child.kill('SIGKILL'), WAIT_MS);
  const exited = once(child, 'exit');
  const [code] = (await once(child, 'close')) as [number | null];
  await exited;
  clearTimeout(timer);
  return { code, stdout: io.out(), stderr: io.err(), quietMs: Date.now() - lastOutput };
}

export interface ServerProcess {
  /** http://127.0.0.1:<port>, as the banner prints it. */
  url: string;
  /** The root key the banner printed (first start only), else null. */
  rootKey: string | null;
  stdout(): string;
  stderr(): string;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL if still running (cleanup after a failed test). */
  kill(): void;
}

const BANNER_URL = /REST API\s+(http:\/\/\S+?)\/api\/v1\s/;
const BANNER_KEY = /Root API key[^\n]*\n\s*(smx_root_[A-Za-z0-9]+)\n/;

/** Spawns `mailmux serve` and resolves once the banner has printed (with the root key when expectRootKey). */
export async function startServer(env: Record<string, string>, opts: { expectRootKey: boolean }): Promise<ServerProcess> {
  const child = spawn(process.execPath, [MAIN, 'serve'], { cwd: ROOT, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  const io = collect(child);
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner after ${WAIT_MS} ms\nstdout:\n${io.out()}\nstderr:\n${io.err()}`)), WAIT_MS);
      const check = (): void => {
        const ready = BANNER_URL.test(io.out()) && (!opts.expectRootKey || BANNER_KEY.test(io.out()));
        if (ready) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on('data', check);
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`mailmux serve exited (${code ?? signal}) before its banner\nstdout:\n${io.out()}\nstderr:\n${io.err()}`));
      });
    });
  } catch (err) {
    kill();
    throw err;
  }
  return {
    url: BANNER_URL.exec(io.out())?.[1] ?? '',
    rootKey: BANNER_KEY.exec(io.out())?.[1] ?? null,
    stdout: io.out,
    stderr: io.err,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(kill, WAIT_MS);
      const [code, signal] = await exited;
      clearTimeout(timer);
      return { code, signal };
    },
    kill,
  };
}

export interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

/**
 * One API call with fetch(). Every JSON answer, success or error, carries `ok` and a
 * `meta.request_id` equal to the X-Request-Id header.
 */
export async function call(baseUrl: string, method: string, path: string, opts: { token?: string; body?: unknown } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${baseUrl}/api/v1${path}`, { method, headers, ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) });
  const text = await res.text();
  const type = res.headers.get('content-type') ?? '';
  const body: unknown = type.includes('json') ? JSON.parse(text) : text;
  if (type.includes('json')) {
    const b = body as { ok?: unknown; meta?: { request_id?: unknown } };
    const rid = res.headers.get('x-request-id');
    if (typeof b.ok !== 'boolean') throw new Error(`${method} ${path}: body has no boolean ok: ${text}`);
    if (typeof b.meta?.request_id !== 'string' || !b.meta.request_id.startsWith('req_')) throw new Error(`${method} ${path}: body has no meta.request_id: ${text}`);
    if (b.meta.request_id !== rid) throw new Error(`${method} ${path}: meta.request_id ${b.meta.request_id} differs from X-Request-Id ${rid}`);
    if (b.ok !== (res.status < 400)) throw new Error(`${method} ${path}: ok=${String(b.ok)} with status ${res.status}`);
  }
  return { status: res.status, body, headers: res.headers };
}
