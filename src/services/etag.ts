// Weak ETags over the JSON of a resource: W/"<16 hex>" as in the spec's examples.
import { createHash } from 'node:crypto';

export function etagOf(value: unknown): string {
  return `W/"${createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16)}"`;
}
