import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { describeEachBackend } from '../helpers/backends.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

describeEachBackend('smoke', (backend) => {
  let app: TestApp;
  before(async () => {
    app = await startTestApp(backend);
  });
  after(async () => app.close());

  test('create a domain and a mailbox', async () => {
    const d = await app.api('POST', '/api/v1/domains', { body: { domain: 'acme.com' } });
    assert.equal(d.status, 201, d.text);
    const m = await app.api('POST', '/api/v1/mailboxes', { body: { email: 'bot@agents.mailmux.test' } });
    assert.equal(m.status, 201, m.text);
    const list = await app.api('GET', '/api/v1/mailboxes');
    assert.equal(list.body.data.length, 1);
  });
});
