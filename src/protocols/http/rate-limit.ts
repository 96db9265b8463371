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

export class RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();
  private readonly windowMs: number;
  private lastSweep = 0;
  private readonly now: () => number;

  constructor(windowSeconds: number, now: () => number = Date.now) {
    this.windowMs = windowSeconds * 1000;
    this.now = now;
  }

  hit(bucket: string, limit: number): RateDecision {
    const now = this.now();
    this.sweep(now);
    const start = now - (now % this.windowMs);
    let w = this.windows.get(bucket);
    if (!w || w.start !== start) {
      w = { start, count: 0 };
      this.windows.set(bucket, w);
    }
    w.count += 1;
    const resetMs = start + this.windowMs;
    const allowed = limit === 0 || w.count <= limit;
    return {
      limit,
      remaining: Math.max(0, limit - w.count),
      resetAt: Math.ceil(resetMs / 1000),
      allowed,
      retryAfterSeconds: Math.max(1, Math.ceil((resetMs - now) / 1000)),
    };
  }

  /** Drops finished windows so the map stays as small as the set of active callers. */
  private sweep(now: number): void {
    if (now - this.lastSweep < this.windowMs) return;
    this.lastSweep = now;
    for (const [key, w] of this.windows) if (w.start + this.windowMs <= now) this.windows.delete(key);
  }
}
