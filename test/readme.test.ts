// The README's configuration table is the one generated from the config module.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describeConfig } from '../src/config/config.ts';

test('README lists every MAILMUX_* variable with its default', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  assert.ok(readme.includes(describeConfig()), 'README configuration table is out of date: paste describeConfig() output');
});
