// Time in one place so tests can move it. Timestamps are stored and sent as RFC 3339 UTC strings
// with milliseconds; they sort lexically the same way on SQLite and PostgreSQL.

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

let lastMs = Number.NaN;
let lastIso = '';
let priorMs = Number.NaN;
let priorIso = '';

/**
 * RFC 3339 UTC with milliseconds. The last two answers are kept: one write stamps several rows
 * with the same instant, and a delivery alternates between two (its received time and now).
 */
export function iso(ms: number): string {
  if (ms === lastMs) return lastIso;
  if (ms === priorMs) return priorIso;
  priorMs = lastMs;
  priorIso = lastIso;
  lastIso = new Date(ms).toISOString();
  lastMs = ms;
  return lastIso;
}
