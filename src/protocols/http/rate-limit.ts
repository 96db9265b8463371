// Fixed-window rate limits per key (or per client address when no valid key was given). Counts
// live in this process: with several processes each enforces its own share. Every response
// carries X-RateLimit-Limit / -Remaining / -Reset (unix seconds).
export interface RateDecision {
  limit: number;
  remaining: number;
  resetAt: number;
  allowed: boolean;
  retryAfterSeconds: number;
}

interface Window {
  start: number;
  count: number;
}

export class RateLimiter {
  /** Windows per scope (say `key:management`, `ip`), then per key id or address within it. */
  private readonly scopes = new Map<string, Map<string, Window>>();
  private readonly windowMs: number;
  private lastSweep = 0;
  private readonly now: () => number;

  constructor(windowSeconds: number, now: () => number = Date.now) {
    this.windowMs = windowSeconds * 1000;
    this.now = now;
  }

  /**
   * Counts one request of `key` in `scope`. Two levels instead of one joined string: the key is
   * usually a string the store hands out again (a key id), whose hash is already computed.
   */
  hit(scope: string, key: string, limit: number): RateDecision {
    const now = this.now();
    this.sweep(now);
    const start = now - (now % this.windowMs);
    let windows = this.scopes.get(scope);
    if (windows === undefined) {
      windows = new Map();
      this.scopes.set(scope, windows);
    }
    let w = windows.get(key);
    if (w === undefined) {
      w = { start, count: 0 };
      windows.set(key, w);
    } else if (w.start !== start) {
      w.start = start;
      w.count = 0;
    }
    w.count += 1;
    const resetMs = start + this.windowMs;
    return {
      limit,
      remaining: Math.max(0, limit - w.count),
      resetAt: Math.ceil(resetMs / 1000),
      allowed: limit === 0 || w.count <= limit,
      retryAfterSeconds: Math.max(1, Math.ceil((resetMs - now) / 1000)),
    };
  }

  /** Drops finished windows so the maps stay as small as the set of active callers. */
  private sweep(now: number): void {
    if (now - this.lastSweep < this.windowMs) return;
    this.lastSweep = now;
    for (const windows of this.scopes.values()) {
      for (const [key, w] of windows) if (w.start + this.windowMs <= now) windows.delete(key);
    }
  }
}
