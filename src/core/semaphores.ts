// Counting semaphores by key: at most `limit` callers run at once for each key (a domain for
// outbound delivery); the rest wait in order.

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
    // A finishing caller hands its slot straight to the first waiter (the count stays as it is):
    // were it freed and taken again when the waiter resumes, a microtask later, a newcomer could
    // take it in between, or the key's state be dropped as idle under the woken waiter.
    if (slot.active >= this.limit) await new Promise<void>((resolve) => slot.waiting.push(resolve));
    else slot.active++;
    try {
      return await fn();
    } finally {
      const next = slot.waiting.shift();
      if (next) next();
      else if (--slot.active === 0) this.state.delete(key);
    }
  }
}
