// Migration 013 (SQLite): the full-text table is made again without word positions (detail=column)
// and refilled from the stored messages. Here the table a store had before it (the old shape) is
// put back empty, so every entry the search then finds was rebuilt by the migration from the
// messages and their bodies: words of the subject, the sender's name and the body (accents folded),
// all words of a query together, one mailbox's messages only; deletes and new deliveries keep the
// rebuilt table in step.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { loadConfig } from '../../src/config/config.ts';
import { openServices } from '../../src/app/app.ts';
import type { Services } from '../../src/services/index.ts';
import type { Store } from '../../src/store/index.ts';
import { buildMessage, type TestMessage } from '../helpers/mail.ts';

const silent = { info() {}, warn() {}, error() {} };

describe('migration 013: the full-text table without positions [sqlite]', () => {
  test('an old-shape table, even empty, is rebuilt from the messages: every word is found again, in its own mailbox only', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'mailmux-fts-'));
    const config = loadConfig({ MAILMUX_DATA_DIR: dataDir, MAILMUX_DEFAULT_DOMAIN: 'agents.mailmux.test', MAILMUX_LOG_LEVEL: 'silent' });
    let opened: { store: Store; services: Services } | null = await openServices(config, { log: silent });
    try {
      const { services } = opened;
      await services.teams.bootstrap();
      await services.domains.ensureDefaultDomain();
      const teamId = await services.teams.defaultTeamId();
      const a = (await services.mailboxes.create(teamId, { email: 'a@agents.mailmux.test' })).mailbox.id;
      const b = (await services.mailboxes.create(teamId, { email: 'b@agents.mailmux.test' })).mailbox.id;
      const deliver = async (s: Services, mailboxId: string, m: TestMessage): Promise<string> => {
        const r = await s.ingest.deliver({ raw: await buildMessage(m), targets: [{ mailboxId }] });
        return r.delivered[0]!.messageId;
      };
      const zurich = await deliver(services, a, { from: 'Zoë Quill <zoe@example.org>', subject: 'Quarterly figures', text: 'The Zürich office sent the numbers.' });
      const harbour = await deliver(services, a, { subject: 'Greetings', html: '<p>Hello from the harbour</p>' });
      const other = await deliver(services, b, { subject: 'Quarterly figures', text: 'Zürich again, for another mailbox.' });
      await services.ingest.close();
      await opened.store.close();
      opened = null;

      // The table as migration 009 made it, with nothing in it, and 013 not yet run (nor those after
      // it: the migrator runs only migrations named after the last one it ran).
      const file = new SqliteDatabase(join(dataDir, 'mailmux.sqlite'));
      file.exec(`DROP TABLE messages_fts;
        CREATE VIRTUAL TABLE messages_fts USING fts5(mbx, subject, addresses, body, content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2');
        DELETE FROM kysely_migration WHERE name >= '013-fts-columns';`);
      file.close();

      opened = await openServices(config, { log: silent });
      const { store, services: s } = opened;
      const check = new SqliteDatabase(join(dataDir, 'mailmux.sqlite'), { readonly: true });
      try {
        const ddl = (check.prepare("SELECT sql FROM sqlite_master WHERE name = 'messages_fts'").get() as { sql: string }).sql;
        assert.match(ddl, /detail=column/);
      } finally {
        check.close();
      }
      const search = async (mailboxId: string, q: string): Promise<string[]> =>
        (await store.messageQuery.list({ mailboxId, q }, { by: 'received_at', direction: 'desc' }, 10, null)).map((r) => r.id).sort();
      assert.deepEqual(await search(a, 'zurich'), [zurich], 'a body word, accent folded');
      assert.deepEqual(await search(a, 'ZOE'), [zurich], "the sender's name");
      assert.deepEqual(await search(a, 'quarterly figures'), [zurich], 'subject words, this mailbox only');
      assert.deepEqual(await search(b, 'quarterly zürich'), [other]);
      assert.deepEqual(await search(a, 'harbour'), [harbour], 'the text of an HTML-only message');
      assert.deepEqual(await search(a, 'quarterly harbour'), [], 'every word must occur');

      // A permanent delete takes the message out of the rebuilt table; a new delivery goes in.
      const row = (await store.messages.get(zurich))!;
      await store.transaction(async (tx) => tx.messages.destroy(row));
      assert.deepEqual(await search(a, 'zurich'), []);
      const later = (await s.ingest.deliver({ raw: await buildMessage({ subject: 'After the upgrade', text: 'Zürich once more.' }), targets: [{ mailboxId: a }] })).delivered[0]!.messageId;
      assert.deepEqual(await search(a, 'zurich upgrade'), [later]);
    } finally {
      if (opened) {
        await opened.services.ingest.close();
        await opened.store.close();
      }
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
