// Time in one place so tests can move it. Timestamps are stored and sent as RFC 3339 UTC strings
// with milliseconds; they sort lexically the same way on SQLite and PostgreSQL.

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
