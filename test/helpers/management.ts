// Shared setup for the Management API suites: error assertions, a raw client for answers the spec
// does not list for an operation (429, 400 on list queries), a second team, and a loopback DNS
// server that publishes a domain's records so verification runs against real DNS.
import assert from 'node:assert/strict';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { newId } from '../../src/core/ids.ts';
import { loadSpec } from '../../src/protocols/http/contract.ts';
import { patchedSpec } from '../../src/protocols/http/spec-deviations.ts';
import type { ApiResponse, TestApp } from './app.ts';
import { LoopbackDns } from './dns-server.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

/** Asserts the spec's error envelope with the given status and code (retryable per the spec's policy). */
export function assertError(res: ApiResponse, status: number, code: string): void {
  assert.equal(res.status, status, `expected ${status} ${code}, got ${res.status}: ${res.text}`);
  assert.equal(res.body.ok, false);
  assert.equal(res.body.error.code, code, res.text);
  assert.equal(typeof res.body.error.message, 'string');
  assert.equal(res.body.error.retryable, status === 429 || status >= 500);
  assert.equal(res.body.meta.request_id, res.headers['x-request-id']);
}

let apiError: ValidateFunction | null = null;
function errorSchema(): ValidateFunction {
  if (apiError) return apiError;
  const doc = patchedSpec(loadSpec('openapi-app.json'));
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  addFormats(ajv);
  ajv.addSchema({ $id: 'spec', components: doc.components }, 'spec');
  apiError = ajv.compile({ $ref: 'spec#/components/schemas/ApiError' });
  return apiError;
}

/**
 * A request outside app.api()'s per-operation validation, for statuses the spec leaves out of an
 * operation's list (every operation can answer 429; list queries can be invalid). The request id
 * rule still holds and an error body must still be the spec's ApiError.
 */
export async function rawApi(app: TestApp, method: string, url: string, opts: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {}): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  const token = opts.token === undefined ? app.rootKey : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers['content-type'] ??= 'application/json';
  const res = await app.http.inject({ method: method as 'GET', url, headers, ...(opts.body !== undefined ? { payload: JSON.stringify(opts.body) } : {}) });
  const contentType = String(res.headers['content-type'] ?? '');
  const body = contentType.includes('json') && res.body.length > 0 ? JSON.parse(res.body) : res.body;
  assert.match(String(res.headers['x-request-id']), /^req_/);
  if (body && typeof body === 'object' && body.meta) assert.equal(body.meta.request_id, res.headers['x-request-id']);
  if (res.statusCode >= 400) {
    const validate = errorSchema();
    assert.ok(validate(body), `error body does not match ApiError: ${JSON.stringify(validate.errors)} ${res.body}`);
  }
  return { status: res.statusCode, headers: res.headers, body, text: res.body };
}

/** A second team with its own root key (teams are created by the CLI, so through the services). */
export async function secondTeam(app: TestApp): Promise<{ teamId: string; rootKey: string }> {
  const teamId = newId('team');
  await app.services.store.teams.insert({ id: teamId, name: 'Other team', created_at: new Date().toISOString() });
  const key = await app.services.teams.createRootKey('other team key', teamId);
  return { teamId, rootKey: key.secret };
}

export interface DnsRecordsView {
  domain: string;
  dns_records: {
    verification: { name: string; value: string };
    spf: { name: string; value: string };
    dmarc: { name: string; value: string };
    dkim: { name: string; value: string }[];
    mx: { priority: number; target: string }[];
    mail_from: { mx: { name: string; priority: number; target: string }; spf: { name: string; value: string } };
  };
}

/** The loopback DNS server with helpers to publish or withdraw everything a domain asks for. */
export class DnsFixture {
  readonly server = new LoopbackDns();
  address = '';

  async start(): Promise<string> {
    this.address = await this.server.start();
    return this.address;
  }

  stop(): Promise<void> {
    return this.server.stop();
  }

  private addTxt(name: string, value: string): void {
    const list = this.server.zone.txt.get(name) ?? [];
    list.push(value);
    this.server.zone.txt.set(name, list);
  }

  publish(view: DnsRecordsView): void {
    const r = view.dns_records;
    this.addTxt(r.verification.name, r.verification.value);
    this.addTxt(r.spf.name, r.spf.value);
    this.addTxt(r.dmarc.name, r.dmarc.value);
    for (const d of r.dkim) this.addTxt(d.name, d.value);
    if (r.mx.length > 0) this.server.zone.mx.set(view.domain, r.mx.map((m) => ({ exchange: m.target, priority: m.priority })));
    this.server.zone.mx.set(r.mail_from.mx.name, [{ exchange: r.mail_from.mx.target, priority: r.mail_from.mx.priority }]);
    this.addTxt(r.mail_from.spf.name, r.mail_from.spf.value);
  }

  /** Removes every record at and under the domain. */
  withdraw(domain: string): void {
    const under = (name: string): boolean => name === domain || name.endsWith(`.${domain}`);
    for (const name of [...this.server.zone.txt.keys()]) if (under(name)) this.server.zone.txt.delete(name);
    for (const name of [...this.server.zone.mx.keys()]) if (under(name)) this.server.zone.mx.delete(name);
    for (const name of [...this.server.zone.servfail]) if (under(name)) this.server.zone.servfail.delete(name);
  }
}

export async function createDomain(app: TestApp, domain: string, mode?: 'send_only' | 'send_receive'): Promise<any> {
  const res = await app.api('POST', '/api/v1/domains', { body: mode ? { domain, mode } : { domain } });
  assert.equal(res.status, 201, res.text);
  return res.body.data;
}

/** Creates the domain, publishes its records and verifies it. */
export async function verifiedDomain(app: TestApp, dns: DnsFixture, domain: string, mode?: 'send_only' | 'send_receive'): Promise<any> {
  const view = await createDomain(app, domain, mode);
  dns.publish(view);
  const res = await app.api('POST', `/api/v1/domains/${view.id}/verify`);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.data.status, 'verified', res.text);
  return view;
}

export async function createMailbox(app: TestApp, email: string, extra: Record<string, unknown> = {}): Promise<{ mailbox: any; credential: any }> {
  const res = await app.api('POST', '/api/v1/mailboxes', { body: { email, ...extra } });
  assert.equal(res.status, 201, res.text);
  return res.body.data;
}
