// PostgreSQL writes a new message in one statement inside a transaction (MessagesRepo.insertPgAtOnce:
// its change, the messages and message_contents rows, its folders and keywords, the thread made for
// it, and every counter it moves, the mailbox's used bytes included), and with separate statements
// elsewhere. Both must write the same: two copies of one message, one written each way into a
// folder and a thread of their own (one that exists, or one made with the message), leave equal
// rows and equal counter moves. (SQLite has one way only.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { parseMessage } from '../../src/mime/parse.ts';
import { prepareMessage } from '../../src/services/mail/ingest.ts';
import { pgSearchVector, type MessageInsert } from '../../src/store/repos/messages.ts';
import { foldForSearch, NON_WORD } from '../../src/store/repos/message-query.ts';
import type { Repos } from '../../src/store/index.ts';
import { describeEachBackend } from '../helpers/backends.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { buildMessage, createMailbox, type TestMailbox } from '../helpers/mail.ts';

describeEachBackend('message insert in one statement', (backend) => {
  const skip = backend.name !== 'postgres' && 'SQLite writes a message with separate statements only';
  let app: TestApp;
  let box: TestMailbox;
  let pool: pg.Pool;

  before(async () => {
    if (skip) return;
    app = await startTestApp(backend);
    box = await createMailbox(app, 'at-once');
    pool = new pg.Pool({ connectionString: app.config.databaseUrl!, options: `-c search_path=${app.pgSchema!}` });
  });
  after(async () => {
    if (skip) return;
    await pool.end();
    await app.close();
  });
  const rows = async (text: string, values: unknown[]): Promise<Record<string, unknown>[]> => (await pool.query(text, values)).rows;

  for (const newThread of [false, true]) test(`writes the same rows and moves the same counters as the separate statements (${newThread ? 'a thread made with the message' : 'a thread that exists'})`, { skip }, async () => {
    const store = app.services.store;
    const raw = await buildMessage({ from: 'Ann <ann@partner.example>', to: box.email, subject: 'Quarterly numbers', text: 'The figures for 2026-11 are attached.' });
    const message = prepareMessage(await parseMessage(raw));
    const now = new Date().toISOString();
    // A folder and a thread for each way, so the counters of each can be read alone.
    const folderIds: string[] = [];
    for (const name of ['separate', 'at-once']) {
      const id = `fld_${name.replace('-', '')}${newThread ? 'n' : 'e'}${Date.now()}`;
      await store.folders.insert({ id, mailbox_id: box.id, name, role: null, parent_id: null, sort_order: 10, next_uid: 1, uid_validity: 1, created_at: now, updated_at: now });
      folderIds.push(id);
    }
    const input = (way: number): MessageInsert => ({
      row: {
        ...message.columns,
        id: `msg_way${way}${Date.now()}`,
        mailbox_id: box.id,
        thread_id: `thr_way${way}${Date.now()}`,
        blob_sha256: 'a'.repeat(64),
        size_bytes: raw.length,
        received_at: now,
        sent_sort: message.columns.sent_at ?? now,
        is_spam: 0,
        spam_score: null,
        auth_results: 'mailmux; spf=none',
        keywords: JSON.stringify(['$flagged', 'project-x']),
        seen: 0,
        flagged: 1,
        answered: 0,
        draft: 0,
        modseq: 0,
        created_at: now,
        updated_at: now,
      },
      folderIds: [folderIds[way]!],
      uids: new Map([[folderIds[way]!, 7]]),
      search: message.search,
      counted: { folders: false, thread: false },
      usedBytes: raw.length,
    });
    const threadOf = (m: MessageInsert) => ({ id: m.row.thread_id, mailbox_id: box.id, subject_key: message.subjectKey, subject: m.row.subject, last_received_at: now, created_at: now });
    const ways = [input(0), input(1)];
    // A thread that exists is made before; one made with the message comes with it, counted with it.
    const thread = async (repos: Repos, m: MessageInsert): Promise<void> => {
      if (newThread) m.thread = { row: threadOf(m), first: { unread: 1, attachments: 0 } };
      else await repos.threads.insert(threadOf(m));
    };
    const counts = async () => (await rows('SELECT total, unread FROM mailbox_message_counts WHERE mailbox_id = $1', [box.id]))[0] ?? { total: 0, unread: 0 };
    const countsBefore = await counts();
    const usedBytes = async (): Promise<number> => Number((await rows('SELECT used_bytes FROM mailboxes WHERE id = $1', [box.id]))[0]!.used_bytes);
    const usedBefore = await usedBytes();
    // Outside a transaction: separate statements. Inside one: one statement.
    await thread(store, ways[0]!);
    await store.messages.insert(ways[0]!);
    assert.equal(await usedBytes(), usedBefore + raw.length, 'the separate statements add the size to the used bytes');
    await store.transaction(async (tx) => {
      await thread(tx, ways[1]!);
      await tx.messages.insert(ways[1]!);
    });

    const read = async (m: MessageInsert) => {
      const id = m.row.id;
      const [message] = await rows('SELECT *, search::text AS search FROM messages WHERE id = $1', [id]);
      const { id: _i, thread_id: _t, modseq, folder_ids, ...row } = message!;
      const [{ message_id: _m, ...contents }] = (await rows('SELECT * FROM message_contents WHERE message_id = $1', [id])) as [Record<string, unknown>];
      const folders = (await rows('SELECT uid, mailbox_id, received_at, seen, folder_id = $2 AS own FROM message_folders WHERE message_id = $1', [id, m.folderIds[0]]));
      const keywords = await rows('SELECT keyword, mailbox_id FROM message_keywords WHERE message_id = $1 ORDER BY keyword', [id]);
      const changes = await rows('SELECT * FROM changes WHERE object_id = $1', [id]);
      const [folder] = await rows('SELECT total_messages, unread_messages, next_uid FROM folders WHERE id = $1', [m.folderIds[0]]);
      const [thread] = await rows('SELECT message_count, unread_count, attachment_count, mailbox_id, subject_key, subject, last_received_at FROM threads WHERE id = $1', [m.row.thread_id]);
      const threadFolders = await rows('SELECT n, mailbox_id FROM thread_folders WHERE thread_id = $1', [m.row.thread_id]);
      assert.equal(changes.length, 1, 'one change appended');
      const { change_id, created_at: _at, object_id: _o, ...change } = changes[0]!;
      assert.equal(Number(modseq), Number(change_id), "the row's modseq is its change's id");
      assert.equal(folder_ids, m.folderIds[0]);
      return { row, contents, folders, keywords, change, folder, thread, threadFolders };
    };
    const separate = await read(ways[0]!);
    const atOnce = await read(ways[1]!);
    assert.deepEqual(atOnce, separate);
    // And what they hold is the message (not two equal mistakes).
    assert.equal(separate.row.subject, 'Quarterly numbers');
    // The vector: the distinct words of subject, addresses and body, without positions (pgSearchVector).
    for (const word of ['quarterly', 'numbers', 'ann', 'partner', 'example', 'figures', '2026', '11', 'attached']) assert.match(String(separate.row.search), new RegExp(`'${word}'`));
    assert.doesNotMatch(String(separate.row.search), /:/);
    assert.equal(String(separate.contents.text_body).trim(), 'The figures for 2026-11 are attached.');
    assert.deepEqual(separate.keywords.map((k) => k.keyword), ['$flagged', 'project-x']);
    assert.deepEqual(separate.folder, { total_messages: 1, unread_messages: 1, next_uid: 1 });
    assert.deepEqual(separate.thread, { message_count: 1, unread_count: 1, attachment_count: 0, mailbox_id: box.id, subject_key: message.subjectKey, subject: 'Quarterly numbers', last_received_at: now });
    assert.deepEqual(separate.threadFolders, [{ n: 1, mailbox_id: box.id }]);
    assert.deepEqual(separate.folders.map((f) => [Number(f.uid), f.own]), [[7, true]]);
    assert.deepEqual(separate.change, { team_id: null, mailbox_id: box.id, type: 'message', kind: 'created' });
    assert.equal(await usedBytes(), usedBefore + 2 * raw.length, 'and so does the one statement');
    const countsAfter = await counts();
    assert.equal(Number(countsAfter.total) - Number(countsBefore?.total ?? 0), 2);
    assert.equal(Number(countsAfter.unread) - Number(countsBefore?.unread ?? 0), 2);
  });

  test("given no UID, the statement reserves the folder's next one and counts the message in it (ingest, FoldersRepo.entryByRole)", { skip }, async () => {
    const store = app.services.store;
    const raw = await buildMessage({ from: 'Ann <ann@partner.example>', to: box.email, subject: 'Reserved', text: 'Two messages, UIDs 5 and 6.' });
    const message = prepareMessage(await parseMessage(raw));
    const now = new Date().toISOString();
    const folderId = `fld_reserve${Date.now()}`;
    await store.folders.insert({ id: folderId, mailbox_id: box.id, name: 'reserve', role: null, parent_id: null, sort_order: 10, next_uid: 5, uid_validity: 1, created_at: now, updated_at: now });
    const input = (n: number, uids: Map<string, number>, countedFolders: boolean): MessageInsert => ({
      row: {
        ...message.columns, id: `msg_reserve${n}${Date.now()}`, mailbox_id: box.id, thread_id: `thr_reserve${n}${Date.now()}`, blob_sha256: 'b'.repeat(64), size_bytes: raw.length,
        received_at: now, sent_sort: now, is_spam: 0, spam_score: null, auth_results: null, keywords: '[]', seen: n === 1 ? 1 : 0, flagged: 0, answered: 0, draft: 0, modseq: 0, created_at: now, updated_at: now,
      },
      folderIds: [folderId],
      uids,
      search: message.search,
      counted: { folders: countedFolders, thread: false },
      thread: { row: { id: `thr_reserve${n}${Date.now()}`, mailbox_id: box.id, subject_key: message.subjectKey, subject: 'Reserved', last_received_at: now, created_at: now }, first: { unread: n === 1 ? 0 : 1, attachments: 0 } },
    });
    const ids: string[] = [];
    for (const n of [0, 1]) {
      const m = input(n, new Map(), false);
      await store.transaction((tx) => tx.messages.insert(m));
      ids.push(m.row.id);
    }
    const uids = await rows('SELECT uid FROM message_folders WHERE message_id = ANY($1) ORDER BY uid', [ids]);
    assert.deepEqual(uids.map((r) => Number(r.uid)), [5, 6]);
    const [folder] = await rows('SELECT next_uid, total_messages, unread_messages FROM folders WHERE id = $1', [folderId]);
    assert.deepEqual(folder, { next_uid: 7, total_messages: 2, unread_messages: 1 });
    // A folder the caller counted needs its UID from the caller; outside a transaction, always.
    await assert.rejects(store.transaction((tx) => tx.messages.insert(input(2, new Map(), true))), /UIDs for all folders or for none/);
    await assert.rejects(store.messages.insert(input(3, new Map(), false)), /a UID for every folder/);
  });

  test("the tsvector made in JavaScript has the lexemes PostgreSQL's own parse gives the same words, so vectors stored before still match", { skip }, async () => {
    const texts = [
      'Quarterly numbers: see https://files.partner.example/q3?id=42 or mail bob.smith+tag@partner.example',
      'Café, naïve façade, Straße, İstanbul, ΟΔΟΣ, привет мир, γεια, שלום, مرحبا, สวัสดี',
      '中文字符 日本語テキスト ひらがな 한국어 텍스트',
      'x²y ½ ⅻ ǅ ﬁ test_ok 1,5 3.14 v1.2.3 ab-cd 0x1F 1e5 12abc 2026-11-25T10:00:00Z',
      "quotes ' and \\ backslashes \" and emoji 🎉👍 are not words",
      `${'a'.repeat(2046)} ${'b'.repeat(2047)} ${'é'.repeat(1100)} end`,
    ];
    for (const text of texts) {
      const folded = foldForSearch(text);
      const mine = pgSearchVector({ subject: '', addresses: '', body: folded });
      const [r] = await rows(
        `SELECT ARRAY(SELECT lexeme FROM unnest($1::tsvector) ORDER BY 1) AS mine, ARRAY(SELECT lexeme FROM unnest(to_tsvector('simple', $2)) ORDER BY 1) AS theirs`,
        [mine, folded.replace(NON_WORD, ' ')],
      );
      assert.ok((r!.mine as string[]).length > 0);
      assert.deepEqual(r!.mine, r!.theirs, text.slice(0, 40));
    }
  });
});
