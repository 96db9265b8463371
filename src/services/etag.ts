// Weak ETags over the JSON of a resource: W/"<16 hex>" as in the spec's examples.
import { hash } from 'node:crypto';

export function etagOf(value: unknown): string {
  return etagOfJson(JSON.stringify(value));
}

/** etagOf for a value already serialised with JSON.stringify. */
export function etagOfJson(json: string): string {
  return `W/"${hash('sha256', json, 'hex').slice(0, 16)}"`;
}
