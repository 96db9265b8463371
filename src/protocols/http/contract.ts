// The OpenAPI documents as executable contract: per operation, validators for the query string
// and the JSON body built from the spec's own schemas (JSON Schema 2020-12 via Ajv), and the
// mapping of validator issues to the spec's `errors[]` items.
import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { FieldIssue } from '../../core/errors.ts';
import { patchedSpec } from './spec-deviations.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

type Json = Record<string, any>;

export function loadSpec(name: 'openapi-app.json' | 'openapi-sending.json'): Json {
  return JSON.parse(readFileSync(new URL(`../../../spec/${name}`, import.meta.url), 'utf8')) as Json;
}

export interface OperationContract {
  validateQuery: ValidateFunction | null;
  requiredQuery: string[];
  validateBody: ValidateFunction | null;
  bodyRequired: boolean;
}

/** Ajv instances hold the whole (patched) document so $refs resolve against it. */
export class Contract {
  readonly doc: Json;
  private readonly bodyAjv: Ajv2020;
  private readonly queryAjv: Ajv2020;
  private readonly ops = new Map<string, OperationContract>();
  private readonly id: string;

  constructor(doc: Json, id = 'spec') {
    this.doc = patchedSpec(doc);
    this.id = id;
    this.bodyAjv = new Ajv2020({ allErrors: true, strict: false, validateFormats: true });
    this.queryAjv = new Ajv2020({ allErrors: true, strict: false, coerceTypes: true, validateFormats: true });
    for (const ajv of [this.bodyAjv, this.queryAjv]) {
      addFormats(ajv);
      ajv.addSchema({ $id: id, components: this.doc.components }, id);
    }
  }

  private rewriteRefs(schema: unknown): unknown {
    return JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', `"${this.id}#/components/`));
  }

  operation(method: string, path: string): OperationContract {
    const key = `${method.toUpperCase()} ${path}`;
    const cached = this.ops.get(key);
    if (cached) return cached;
    const op = this.doc.paths?.[path]?.[method.toLowerCase()] as Json | undefined;
    if (!op) throw new Error(`No operation ${key} in the OpenAPI document`);
    const params = ((op.parameters ?? []) as Json[]).map((p) => (p.$ref ? this.doc.components.parameters[String(p.$ref).split('/').pop() as string] : p));
    const query = params.filter((p) => p.in === 'query');
    const properties: Json = {};
    for (const p of query) properties[p.name] = p.schema ?? {};
    const requiredQuery = query.filter((p) => p.required).map((p) => p.name as string);
    const validateQuery = query.length > 0 ? this.queryAjv.compile(this.rewriteRefs({ type: 'object', properties }) as Json) : null;
    const body = op.requestBody?.content?.['application/json']?.schema;
    const contract: OperationContract = {
      validateQuery,
      requiredQuery,
      validateBody: body ? this.bodyAjv.compile(this.rewriteRefs(body) as Json) : null,
      bodyRequired: Boolean(op.requestBody?.required ?? body),
    };
    this.ops.set(key, contract);
    return contract;
  }
}

const CODE_OF: Record<string, string> = {
  type: 'invalid_type',
  required: 'invalid_type',
  enum: 'invalid_enum_value',
  const: 'invalid_literal',
  minLength: 'too_small',
  minItems: 'too_small',
  minimum: 'too_small',
  exclusiveMinimum: 'too_small',
  minProperties: 'too_small',
  maxLength: 'too_big',
  maxItems: 'too_big',
  maximum: 'too_big',
  exclusiveMaximum: 'too_big',
  maxProperties: 'too_big',
  pattern: 'invalid_string',
  format: 'invalid_string',
  additionalProperties: 'unrecognized_keys',
  unevaluatedProperties: 'unrecognized_keys',
};

function dotPath(instancePath: string): string {
  return instancePath.split('/').filter(Boolean).map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~')).join('.');
}

/** Ajv issues as the spec's `{field, code, message}` (zod-style codes), one per field and code. */
export function issuesOf(errors: ErrorObject[] | null | undefined): FieldIssue[] {
  const out: FieldIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors ?? []) {
    if (e.keyword === 'if' || e.keyword === 'anyOf' || e.keyword === 'oneOf' || e.keyword === 'allOf') continue;
    let field = dotPath(e.instancePath);
    const params = e.params as Json;
    let message = e.message ?? 'Invalid value';
    if (e.keyword === 'required') {
      field = [field, params.missingProperty].filter(Boolean).join('.');
      message = 'Required';
    } else if (e.keyword === 'additionalProperties' || e.keyword === 'unevaluatedProperties') {
      const extra = params.additionalProperty ?? params.unevaluatedProperty;
      field = [field, extra].filter(Boolean).join('.');
      message = `Unrecognized key: ${String(extra)}`;
    } else if (e.keyword === 'enum') {
      message = `Expected one of: ${(params.allowedValues as unknown[]).map(String).join(', ')}`;
    }
    const code = CODE_OF[e.keyword] ?? 'custom';
    const key = `${field}\u0000${code}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ field: field || '(body)', code, message });
  }
  return out;
}
