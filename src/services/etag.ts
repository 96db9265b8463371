// Weak ETags over the JSON of a resource: W/"<16 hex>" as in the spec's examples.
import { hash } from 'node:crypto';

export function etagOf(value: unknown): string {
  return `W/"${hash('sha256', JSON.stringify(value), 'hex').slice(0, 16)}"`;
}
