// Time in one place so tests can move it. Timestamps are stored and sent as RFC 3339 UTC strings
// with milliseconds; they sort lexically the same way on SQLite and PostgreSQL.

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

let lastMs = Number.NaN;
let lastIso = '';

/** RFC 3339 UTC with milliseconds. The last answer is kept: one write stamps several rows with the same instant. */
export function iso(ms: number): string {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
}
