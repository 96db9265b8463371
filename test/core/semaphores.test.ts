// Semaphores: at most `limit` callers of one key run at once, the rest in arrival order, and a key
// whose callers are all done leaves nothing behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Semaphores } from '../../src/core/semaphores.ts';

/** A task that runs until its release() is called; counts how many run at once. */
function tracker(): { task: (name: string) => () => Promise<string>; release: (name: string) => void; started: string[]; maxRunning: () => number } {
  let running = 0;
  let max = 0;
  const started: string[] = [];
  const gates = new Map<string, () => void>();
  return {
    task: (name) => async () => {
      running++;
      max = Math.max(max, running);
      started.push(name);
      await new Promise<void>((resolve) => gates.set(name, resolve));
      running--;
      return name;
    },
    release: (name) => gates.get(name)!(),
    started,
    maxRunning: () => max,
  };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('a semaphore runs at most its limit of callers for a key, the others in arrival order', async () => {
  const sem = new Semaphores(2);
  const t = tracker();
  const runs = ['a', 'b', 'c', 'd'].map((n) => sem.run('k', t.task(n)));
  // Another key has slots of its own.
  const other = sem.run('other', t.task('x'));
  await turn();
  assert.deepEqual(t.started, ['a', 'b', 'x']);
  t.release('b');
  await turn();
  assert.deepEqual(t.started, ['a', 'b', 'x', 'c']);
  for (const n of ['a', 'c', 'd', 'x']) {
    t.release(n);
    await turn();
  }
  assert.deepEqual(await Promise.all([...runs, other]), ['a', 'b', 'c', 'd', 'x']);
  assert.equal(t.maxRunning(), 3);
});

test('when the last running callers finish together, a woken waiter keeps its slot: newcomers still wait', async () => {
  const sem = new Semaphores(2);
  const t = tracker();
  const first = [sem.run('k', t.task('a')), sem.run('k', t.task('b'))];
  const waiter = sem.run('k', t.task('c'));
  await turn();
  assert.deepEqual(t.started, ['a', 'b']);
  // Both finish in one turn: the second sees no waiter left (the first woke c, which has not run yet).
  t.release('a');
  t.release('b');
  await Promise.all(first);
  // Newcomers arrive before c has started: one may run beside c, the other waits.
  const late = [sem.run('k', t.task('d')), sem.run('k', t.task('e'))];
  await turn();
  assert.deepEqual(t.started, ['a', 'b', 'c', 'd']);
  for (const n of ['c', 'd', 'e']) {
    t.release(n);
    await turn();
  }
  assert.deepEqual(await Promise.all([waiter, ...late]), ['c', 'd', 'e']);
  assert.equal(t.maxRunning(), 2, 'never more than the limit at once');
});

test('a failing caller frees its slot for the next one', async () => {
  const sem = new Semaphores(1);
  const failing = sem.run('k', async () => {
    await turn();
    throw new Error('boom');
  });
  const next = sem.run('k', async () => 'ran');
  await assert.rejects(failing, /boom/);
  assert.equal(await next, 'ran');
});
