import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { newId } from '../../src/core/ids.ts';

test('ids keep the public format: prefix, underscore, 24 lowercase alphanumerics', () => {
  for (let i = 0; i < 1000; i++) assert.match(newId('msg'), /^msg_[a-z0-9]{24}$/);
});

test('ids sort by creation time, so new rows land together at the end of an id index', async () => {
  const before = Date.now();
  const first = newId('evt');
  await sleep(3);
  const second = newId('evt');
  assert.ok(first < second, `${first} < ${second}`);
  // The time part is the creation time in milliseconds.
  const at = parseInt(first.slice(4, 13), 36);
  assert.ok(at >= before && at <= Date.now(), `${at} within the test's clock`);
});

test('ids made in the same millisecond still differ (77 random bits each)', () => {
  const ids = new Set(Array.from({ length: 20_000 }, () => newId('thr')));
  assert.equal(ids.size, 20_000);
});
