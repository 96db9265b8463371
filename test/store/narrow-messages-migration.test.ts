// Migration 010 (narrow message rows) upgrades a store written by the previous schema, on each
// backend: a database is migrated to 009, given messages the way that schema stored them (every
// column on the messages row, folders only in message_folders, SQLite full-text rows keyed by the
// rowid), then opened, which runs 010. Every reader must then see the same messages: whole rows,
// list summaries with their folders, body, header and full-text filters.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import { Migrator } from 'kysely/migration';
import pg from 'pg';
import { openStore, type Store } from '../../src/store/index.ts';
import { migrationProvider } from '../../src/store/migrations/index.ts';
import { foldForSearch, mailboxSearchToken, searchKeyFloor } from '../../src/store/repos/message-query.ts';
import { describeEachBackend, type Backend } from '../helpers/backends.ts';

type Provisioned = Awaited<ReturnType<Backend['provision']>>;

const MBX = 'mbx_migrationtest';
const FOLDERS = ['fld_b', 'fld_a'];

/** A messages row as migration 002 defined it (every column). */
function oldRow(i: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const at = new Date(Date.UTC(2026, 0, 1, 8, i)).toISOString();
  return {
    id: `msg_old${i}`,
    mailbox_id: MBX,
    thread_id: `thr_old${i}`,
    blob_sha256: 'a'.repeat(64),
    size_bytes: 1000 + i,
    received_at: at,
    sent_at: at,
    sent_sort: at,
    subject: `Subject ${i} "quoted" \\ back`,
    subject_sort: `subject ${i}`,
    from_sort: `sender${i}@example.org`,
    to_sort: 'me@example.org',
    cc_text: '',
    bcc_text: '',
    headers_text: `\nfrom: sender${i}@example.org\nx-tag: tag${i}\n`,
    addresses: JSON.stringify({ from: { email: `sender${i}@example.org`, name: `Sender ${i}` }, sender: null, to: [{ email: 'me@example.org', name: null }], cc: [], bcc: [], reply_to: [] }),
    preview: `Preview ${i}`,
    has_attachments: 0,
    attachments: '[]',
    rfc_message_id: `m${i}@example.org`,
    in_reply_to: null,
    references: JSON.stringify([`r${i}@example.org`]),
    headers: JSON.stringify([{ name: 'X-Tag', value: `tag${i}` }]),
    imap: JSON.stringify({ envelope: { i }, bodystructure: null, parts: [] }),
    text_body: `Body text ${i} with the word needle${i}`,
    html_body: i === 0 ? '<p>html</p>' : null,
    is_spam: 0,
    spam_score: null,
    auth_results: `mx.example; spf=pass ${i}`,
    keywords: '[]',
    seen: 0,
    flagged: 0,
    answered: 0,
    draft: 0,
    modseq: i + 1,
    created_at: at,
    updated_at: at,
    ...extra,
  };
}

/** One number read straight from the database behind the store. */
async function scalar(db: Provisioned, query: string): Promise<number> {
  if (db.databaseUrl === null) {
    const file = new SqliteDatabase(join(db.dataDir, 'mailmux.sqlite'), { readonly: true });
    try {
      return Number(Object.values(file.prepare(query).get() as object)[0]);
    } finally {
      file.close();
    }
  }
  const c = new pg.Client({ connectionString: db.databaseUrl, options: `-c search_path=${db.pgSchema}` });
  await c.connect();
  try {
    return Number(Object.values((await c.query(query)).rows[0] as object)[0]);
  } finally {
    await c.end();
  }
}

async function atVersion009(db: Provisioned): Promise<Kysely<any>> {
  if (db.databaseUrl === null) {
    const file = new SqliteDatabase(join(db.dataDir, 'mailmux.sqlite'));
    file.pragma('journal_mode = WAL');
    const k = new Kysely<any>({ dialect: new SqliteDialect({ database: file }) });
    const { error } = await new Migrator({ db: k, provider: migrationProvider('sqlite') }).migrateTo('009-query-speed');
    assert.equal(error, undefined);
    return k;
  }
  const pool = new pg.Pool({ connectionString: db.databaseUrl, options: `-c search_path=${db.pgSchema}` });
  const k = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
  const { error } = await new Migrator({ db: k, provider: migrationProvider('postgres'), migrationTableSchema: db.pgSchema! }).migrateTo('009-query-speed');
  assert.equal(error, undefined);
  return k;
}

describeEachBackend('migration 010: narrow message rows', (backend) => {
  let db: Provisioned;
  let store: Store;
  const rows = [oldRow(0), oldRow(1), oldRow(2)];
  const folderOf: Record<string, string[]> = { msg_old0: FOLDERS, msg_old1: ['fld_a'], msg_old2: [] };
  const keys = new Map<string, number>();

  before(async () => {
    db = await backend.provision();
    const k = await atVersion009(db);
    for (const [i, row] of rows.entries()) {
      if (backend.name === 'sqlite') {
        const key = searchKeyFloor(String(row.received_at)) + i;
        keys.set(String(row.id), key);
        await k.insertInto('messages').values({ ...row, rowid: BigInt(key) }).execute();
        await sql`INSERT INTO messages_fts(rowid, mbx, subject, addresses, body) VALUES (${BigInt(key)}, ${mailboxSearchToken(MBX)}, ${foldForSearch(String(row.subject))}, '', ${foldForSearch(String(row.text_body))})`.execute(k);
      } else {
        await k.insertInto('messages').values({ ...row, search: sql`to_tsvector('simple', ${foldForSearch(`${String(row.subject)}\n${String(row.text_body)}`)})` }).execute();
      }
      for (const [u, folderId] of folderOf[String(row.id)]!.entries()) {
        await k.insertInto('message_folders').values({ message_id: row.id, folder_id: folderId, mailbox_id: MBX, uid: u + 1, received_at: row.received_at, seen: 0 }).execute();
      }
    }
    await k.destroy();
    store = await openStore({ databaseUrl: db.databaseUrl, dataDir: db.dataDir, ...(db.pgSchema ? { pgSchema: db.pgSchema } : {}) });
  });
  after(async () => {
    await store.close();
    await db.drop();
  });

  test('whole rows read back as they were written, from both tables', async () => {
    for (const row of rows) {
      const got = await store.messages.get(String(row.id));
      assert.ok(got);
      for (const [k, v] of Object.entries(row)) assert.deepEqual(Number.isFinite(v as number) ? Number(got[k as keyof typeof got]) : got[k as keyof typeof got], v, `${String(row.id)} ${k}`);
      assert.deepEqual(got.folder_ids, [...folderOf[String(row.id)]!].sort().join(','));
    }
    const many = await store.messages.getMany(MBX, rows.map((r) => String(r.id)));
    assert.deepEqual(many.map((r) => r.text_body).sort(), rows.map((r) => r.text_body).sort());
  });

  test('the messages row no longer holds the moved columns; the SQLite search keys are kept', async () => {
    if (backend.name === 'sqlite') {
      const file = new SqliteDatabase(join(db.dataDir, 'mailmux.sqlite'), { readonly: true });
      try {
        const columns = (file.prepare("SELECT name FROM pragma_table_info('messages')").all() as { name: string }[]).map((r) => r.name);
        for (const c of ['headers_text', 'references', 'headers', 'imap', 'text_body', 'html_body', 'auth_results']) assert.ok(!columns.includes(c), c);
        assert.ok(columns.includes('folder_ids'));
        const indexes = (file.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages'").all() as { name: string }[]).map((r) => r.name);
        assert.ok(indexes.includes('messages_mailbox_received_idx') && indexes.includes('messages_thread_idx'), indexes.join(','));
        for (const [id, key] of keys) {
          assert.equal((file.prepare('SELECT rowid AS k FROM messages WHERE id = ?').get(id) as { k: number }).k, key);
          // message_contents shares the rowid (its `key`).
          assert.equal((file.prepare('SELECT key AS k FROM message_contents WHERE message_id = ?').get(id) as { k: number }).k, key);
        }
      } finally {
        file.close();
      }
    } else {
      const c = new pg.Client({ connectionString: db.databaseUrl!, options: `-c search_path=${db.pgSchema}` });
      await c.connect();
      try {
        const columns = (await c.query("SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'messages'")).rows.map((r: { column_name: string }) => r.column_name);
        assert.ok(!columns.includes('text_body') && !columns.includes('imap'), columns.join(','));
        assert.ok(columns.includes('folder_ids') && columns.includes('search'));
      } finally {
        await c.end();
      }
    }
  });

  test('list summaries carry their folders; body, header and full-text filters read the moved text', async () => {
    const q = store.messageQuery;
    const desc = { by: 'received_at', direction: 'desc' } as const;
    const page = await q.list({ mailboxId: MBX }, desc, 10, null);
    assert.deepEqual(page.map((r) => [r.id, r.folder_ids]), [['msg_old2', ''], ['msg_old1', 'fld_a'], ['msg_old0', 'fld_a,fld_b']]);
    assert.deepEqual((await q.list({ mailboxId: MBX, folderId: 'fld_a' }, desc, 10, null)).map((r) => r.id), ['msg_old1', 'msg_old0']);
    assert.deepEqual((await q.list({ mailboxId: MBX, body: 'NEEDLE1' }, desc, 10, null)).map((r) => r.id), ['msg_old1']);
    assert.deepEqual((await q.list({ mailboxId: MBX, headerName: 'x-tag', headerValue: 'tag2' }, desc, 10, null)).map((r) => r.id), ['msg_old2']);
    assert.deepEqual((await q.list({ mailboxId: MBX, q: 'needle0' }, desc, 10, null)).map((r) => r.id), ['msg_old0']);
    const full = await q.list({ mailboxId: MBX, threadId: 'thr_old1' }, desc, 10, null, 'full');
    assert.equal(full[0]?.imap, rows[1]!.imap);
  });

  test('moves and deletes keep folder_ids and message_contents in step', async () => {
    const row = (await store.messages.get('msg_old2'))!;
    await store.transaction(async (tx) => tx.messages.setFolders(row, ['fld_b', 'fld_a'], new Map([['fld_a', 10], ['fld_b', 10]]), new Date().toISOString()));
    assert.equal((await store.messages.get('msg_old2'))?.folder_ids, 'fld_a,fld_b');
    await store.transaction(async (tx) => tx.messages.setFolders(row, ['fld_b'], new Map(), new Date().toISOString()));
    assert.equal((await store.messages.get('msg_old2'))?.folder_ids, 'fld_b');
    await store.transaction(async (tx) => tx.messages.destroy(row));
    assert.equal(await store.messages.get('msg_old2'), undefined);
    assert.equal(await scalar(db, "SELECT count(*) AS n FROM message_contents WHERE message_id = 'msg_old2'"), 0);
    assert.equal(await scalar(db, 'SELECT count(*) AS n FROM message_contents'), 2);
    assert.equal((await store.messageQuery.list({ mailboxId: MBX, body: 'needle2' }, { by: 'received_at', direction: 'desc' }, 10, null)).length, 0);
  });
});
