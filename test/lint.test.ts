// The layer rule is a real lint rule: a service importing a front-end is an error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ESLint } from 'eslint';

test('services may not import protocols; only store may import SQL drivers', async () => {
  const eslint = new ESLint({ cwd: new URL('..', import.meta.url).pathname });
  const [bad] = await eslint.lintText("import { buildHttpServer } from '../protocols/http/server.ts';\nexport const x = buildHttpServer;\n", { filePath: 'src/services/probe.ts' });
  assert.ok(bad?.messages.some((m) => m.ruleId === 'no-restricted-imports'), JSON.stringify(bad?.messages));
  const [driver] = await eslint.lintText("import pg from 'pg';\nexport const x = pg;\n", { filePath: 'src/services/probe.ts' });
  assert.ok(driver?.messages.some((m) => m.ruleId === 'no-restricted-imports'));
  const [ok] = await eslint.lintText("import pg from 'pg';\nexport const x = pg;\n", { filePath: 'src/store/probe.ts' });
  assert.deepEqual(ok?.messages.filter((m) => m.ruleId === 'no-restricted-imports'), []);
});
