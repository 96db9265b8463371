// Counting semaphores by key: at most `limit` callers run at once for each key (a domain for
// outbound delivery, one key for ingest's PostgreSQL full-text parses); the rest wait in order.

export class Semaphores {
  private readonly limit: number;
  private readonly state = new Map<string, { active: number; waiting: (() => void)[] }>();
  constructor(limit: number) {
    this.limit = limit;
  }

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    let s = this.state.get(key);
    if (!s) {
      s = { active: 0, waiting: [] };
      this.state.set(key, s);
    }
    const slot = s;
    if (slot.active >= this.limit) await new Promise<void>((resolve) => slot.waiting.push(resolve));
    slot.active++;
    try {
      return await fn();
    } finally {
      slot.active--;
      const next = slot.waiting.shift();
      if (next) next();
      else if (slot.active === 0) this.state.delete(key);
    }
  }
}
