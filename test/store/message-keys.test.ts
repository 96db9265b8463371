// SQLite keys a message's body (message_contents) and its full-text row by the messages row's rowid
// (the search key). Migration 012 makes that rowid a declared column, so a copy of the rows that
// carries their declared columns keeps it: what sqlite3's .dump writes and its restore reads back.
// Here that copy is made the way .dump and its restore make it (the table's own CREATE statement,
// then every row's declared columns, then the indexes); every message must still show its own
// body and be found by its own words. Without a declared key the copy numbers the rows 1, 2, 3...
// and the bodies and full-text rows no longer belong to any message.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { backends } from '../helpers/backends.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { createMailbox, deliver, type TestMailbox } from '../helpers/mail.ts';

const sqlite = backends().find((b) => b.name === 'sqlite')!;

describe('messages keep their keys through a dump and restore [sqlite]', () => {
  let app: TestApp;
  let mbx: TestMailbox;
  const words = ['alphaword', 'bravoword', 'charlieword', 'deltaword'];
  const ids: string[] = [];

  before(async () => {
    app = await startTestApp(sqlite);
    mbx = await createMailbox(app);
    const t0 = Date.parse('2026-11-03T08:00:00Z');
    for (const [i, w] of words.entries()) ids.push(await deliver(app, mbx, { subject: `note ${i}`, text: `The ${w} is here.` }, { receivedAt: t0 + i * 60_000 }));
    // A gap, as deletes leave.
    assert.equal((await app.api('DELETE', `/api/v1/mailbox/messages/${ids[1]}?permanent=true`, { token: mbx.key })).status, 200);
  });
  after(async () => app.close());

  test('the rowid is a declared column', () => {
    const file = new SqliteDatabase(join(app.config.dataDir, 'mailmux.sqlite'), { readonly: true });
    try {
      const cols = (file.prepare("SELECT name, pk FROM pragma_table_info('messages')").all() as { name: string; pk: number }[]);
      assert.deepEqual(cols.filter((c) => c.pk > 0).map((c) => c.name), ['key']);
      const rows = file.prepare('SELECT rowid AS r, "key" AS k FROM messages').all() as { r: number; k: number }[];
      assert.equal(rows.length, 3);
      for (const r of rows) assert.equal(r.k, r.r);
    } finally {
      file.close();
    }
  });

  test('after the copy every message shows its own body and is found by its own words', async () => {
    // A second connection to the live file, as the sqlite3 shell would have.
    const file = new SqliteDatabase(join(app.config.dataDir, 'mailmux.sqlite'));
    try {
      const ddl = (file.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'messages'").get() as { sql: string }).sql;
      const indexes = (file.prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages' AND sql IS NOT NULL").all() as { sql: string }[]).map((r) => r.sql);
      file.exec('BEGIN IMMEDIATE');
      file.exec('ALTER TABLE messages RENAME TO messages_dumped');
      file.exec(ddl);
      file.exec('INSERT INTO messages SELECT * FROM messages_dumped ORDER BY id');
      file.exec('DROP TABLE messages_dumped');
      for (const sql of indexes) file.exec(sql);
      file.exec('COMMIT');
    } finally {
      file.close();
    }
    for (const [i, w] of words.entries()) {
      if (i === 1) continue;
      const one = await app.api('GET', `/api/v1/mailbox/messages/${ids[i]}`, { token: mbx.key });
      assert.equal(one.status, 200, w);
      assert.match(String(one.body.data.text_body), new RegExp(w));
      const found = await app.api('GET', `/api/v1/mailbox/messages?q=${w}`, { token: mbx.key });
      assert.deepEqual(found.body.data.map((m: { id: string }) => m.id), [ids[i]], w);
    }
    const list = await app.api('GET', '/api/v1/mailbox/messages', { token: mbx.key });
    assert.deepEqual(list.body.data.map((m: { id: string }) => m.id), [ids[3], ids[2], ids[0]]);
  });
});
