import { test } from 'node:test';
import assert from 'node:assert/strict';
import { extractLinks } from './links.ts';
import { truncateChars } from './truncate.ts';

test('links: http(s) only, in order, deduplicated, trailing punctuation trimmed', () => {
  assert.deepEqual(extractLinks('See https://a.example/x, then (https://b.example/y) and https://a.example/x. Mail me: mailto:a@b.example'), ['https://a.example/x', 'https://b.example/y']);
  assert.deepEqual(extractLinks('https://en.wikipedia.example/wiki/Foo_(bar) and <https://c.example/z>'), ['https://en.wikipedia.example/wiki/Foo_(bar)', 'https://c.example/z']);
  assert.deepEqual(extractLinks('ftp://x.example/a www.x.example https:// nothing'), []);
  assert.deepEqual(extractLinks('"https://q.example/a?b=1&c=2"!'), ['https://q.example/a?b=1&c=2']);
});

test('links: the list is bounded and a long run of brackets is linear', () => {
  const many = Array.from({ length: 1500 }, (_, i) => `https://x.example/${i}`).join(' ');
  assert.equal(extractLinks(many).length, 1000);
  const start = performance.now();
  extractLinks(('https://x.example/' + ')'.repeat(3000) + ' ').repeat(300));
  assert.ok(performance.now() - start < 1000);
});

test('truncate: UTF-16 code units, never half a surrogate pair', () => {
  assert.deepEqual(truncateChars('abc', 3), { text: 'abc', truncated: false });
  assert.deepEqual(truncateChars('ab😀', 3), { text: 'ab', truncated: true });
  assert.deepEqual(truncateChars('ab😀', 4), { text: 'ab😀', truncated: false });
  assert.deepEqual(truncateChars('😀😀', 1), { text: '', truncated: true });
  assert.deepEqual(truncateChars('abc', 0), { text: '', truncated: true });
});
