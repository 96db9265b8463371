// Response validation against the OpenAPI documents: every response a test receives through the
// test client is checked against the operation's schema for its status code.
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { loadSpec } from '../../src/protocols/http/contract.ts';
import { patchedSpec } from '../../src/protocols/http/spec-deviations.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
type Json = Record<string, any>;

export class ResponseValidator {
  private readonly doc: Json;
  private readonly ajv: Ajv2020;
  private readonly cache = new Map<string, ValidateFunction | null>();
  private readonly templates: { method: string; template: string; regex: RegExp }[] = [];
  private readonly base: string;

  constructor(specName: 'openapi-app.json' | 'openapi-sending.json', base: string) {
    this.doc = patchedSpec(loadSpec(specName));
    this.base = base;
    this.ajv = new Ajv2020({ allErrors: true, strict: false });
    addFormats(this.ajv);
    this.ajv.addSchema({ $id: 'spec', components: this.doc.components }, 'spec');
    for (const [template, ops] of Object.entries(this.doc.paths as Json)) {
      const pattern = template
        .split(/(\{[^}]+\})/)
        .map((part) => (part.startsWith('{') ? '[^/]+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
        .join('');
      for (const method of Object.keys(ops as Json)) {
        this.templates.push({ method: method.toUpperCase(), template, regex: new RegExp(`^${pattern}$`) });
      }
    }
    // Literal paths win over templated ones (/mailboxes/availability before /mailboxes/{id}).
    this.templates.sort((a, b) => (a.template.includes('{') ? 1 : 0) - (b.template.includes('{') ? 1 : 0));
  }

  /** The operation template a concrete URL belongs to, or null. */
  match(method: string, url: string): string | null {
    const path = url.split('?')[0]?.slice(this.base.length) ?? '';
    return this.templates.find((t) => t.method === method && t.regex.test(path))?.template ?? null;
  }

  /** Throws unless `value` fits the named component schema (e.g. MailboxRealtimeEvent on an SSE stream). */
  validateComponent(name: string, value: unknown): void {
    const key = `component ${name}`;
    let fn = this.cache.get(key);
    if (!fn) {
      fn = this.ajv.compile({ $ref: `spec#/components/schemas/${name}` });
      this.cache.set(key, fn);
    }
    if (!fn(value)) throw new Error(`${name} does not match the spec: ${this.ajv.errorsText(fn.errors, { separator: '\n  ' })}\nvalue: ${JSON.stringify(value).slice(0, 2000)}`);
  }

  /** Throws with the validator's complaints when the response does not fit the spec. */
  validate(method: string, url: string, status: number, contentType: string | undefined, body: unknown): void {
    const template = this.match(method, url);
    if (!template) throw new Error(`${method} ${url} is not an operation of the spec`);
    const op = this.doc.paths[template][method.toLowerCase()] as Json;
    const response = op.responses?.[String(status)] ?? op.responses?.default;
    if (!response) throw new Error(`${method} ${template} answered ${status}, which the spec does not list (${JSON.stringify(body)})`);
    if (status === 304) return;
    const content = response.content as Json | undefined;
    if (!content) return;
    const type = (contentType ?? '').split(';')[0]?.trim() ?? '';
    const media = content[type];
    if (!media) throw new Error(`${method} ${template} ${status}: content type ${type} not in spec (${Object.keys(content).join(', ')})`);
    if (!type.includes('json') || !media.schema) return;
    const key = `${method} ${template} ${status}`;
    let validateFn = this.cache.get(key);
    if (validateFn === undefined) {
      const schema = JSON.parse(JSON.stringify(media.schema).replaceAll('"#/components/', '"spec#/components/'));
      validateFn = this.ajv.compile(schema);
      this.cache.set(key, validateFn);
    }
    if (validateFn && !validateFn(body)) {
      throw new Error(`${method} ${template} ${status} does not match the spec: ${this.ajv.errorsText(validateFn.errors, { separator: '\n  ' })}\nbody: ${JSON.stringify(body).slice(0, 2000)}`);
    }
  }
}
