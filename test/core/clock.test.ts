// iso() keeps its last two answers (a delivery alternates between its received time and now):
// whatever the order of calls, each answer is the instant's own RFC 3339 form.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { iso } from '../../src/core/clock.ts';

test('iso gives each instant its own RFC 3339 UTC form, in any order of calls', () => {
  const instants = [Date.UTC(2026, 10, 24, 14, 0, 0, 1), Date.UTC(2026, 10, 24, 14, 0, 0, 2), Date.UTC(1999, 11, 31, 23, 59, 59, 999), 0];
  // Repeats, alternations and returns to older instants.
  const order = [0, 0, 1, 0, 1, 2, 0, 2, 3, 1, 3, 3, 2, 1, 0];
  for (const i of order) assert.equal(iso(instants[i]!), new Date(instants[i]!).toISOString());
  assert.equal(iso(Date.UTC(2026, 0, 1)), '2026-01-01T00:00:00.000Z');
});
