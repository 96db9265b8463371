// The one ingest path under concurrency: deliveries that arrive together are committed in shared
// batches (one after the other, the next written while the previous one's flush is on its way),
// every delivery gets exactly one message with its own IMAP UID, and a delivery that fails in its
// transaction fails alone: the others of its batch are stored.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import { AppError } from '../../src/core/errors.ts';
import { describeEachBackend } from '../helpers/backends.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { buildMessage, createMailbox, type TestMailbox } from '../helpers/mail.ts';
import { parseMessage } from '../../src/mime/parse.ts';
import { prepareMessage } from '../../src/services/mail/ingest.ts';
import type { IngestWriterThread } from '../../src/app/ingest-writer.ts';

describeEachBackend('ingest batching', (backend) => {
  let app: TestApp;
  let boxes: TestMailbox[];

  before(async () => {
    app = await startTestApp(backend);
    boxes = [await createMailbox(app, 'batch-a'), await createMailbox(app, 'batch-b'), await createMailbox(app, 'batch-c')];
  });
  after(() => app.close());

  /** Runs fn and asserts that no batch fell back to one transaction per delivery (ingest.batch_retry). */
  async function withoutBatchRetries<T>(fn: () => Promise<T>): Promise<T> {
    const retried: object[] = [];
    const log = app.services.log;
    const warn = log.warn;
    log.warn = (obj) => {
      if ((obj as { event?: string }).event === 'ingest.batch_retry') retried.push(obj);
      warn.call(log, obj);
    };
    let result: T;
    try {
      result = await fn();
    } finally {
      log.warn = warn;
    }
    assert.deepEqual(retried, [], 'every batch was written whole');
    return result;
  }

  test('a batch\'s deliveries to one mailbox count against its quota one after the other', async () => {
    const box = await createMailbox(app, 'batch-quota');
    const raw = await buildMessage({ to: box.email, subject: 'quota in one batch', text: 'q'.repeat(2000) });
    await app.services.store.mailboxes.update(box.id, { used_bytes: 1000, quota_bytes: 1000 + 3 * raw.length });
    // Batches on this connection, or (SQLite) on the ingest writer thread.
    let batches = 0;
    app.services.ingest.onBatchWritten(() => batches++);
    const thread = app.services.ingest.writerInUse as IngestWriterThread | null;
    const threadBefore = thread?.batchesWritten ?? 0;
    const results = await Promise.all(Array.from({ length: 6 }, () => app.services.ingest.deliver({ raw, targets: [{ mailboxId: box.id }], enforceQuota: true })));
    batches += (thread?.batchesWritten ?? 0) - threadBefore;
    assert.ok(batches > 0 && batches < 6, `deliveries shared a batch (${batches} batches)`);
    assert.equal(results.filter((r) => r.delivered.length === 1).length, 3, 'as many as fit');
    assert.deepEqual(results.flatMap((r) => r.refused.map((x) => x.reason)), ['over_quota', 'over_quota', 'over_quota']);
    assert.equal((await app.services.store.mailboxes.get(box.id))!.used_bytes, 1000 + 3 * raw.length);
    assert.equal(await app.services.store.messageQuery.count({ mailboxId: box.id }), 3);
  });

  test("a batch's incoming-log rows are written together, each with its own values", async () => {
    const box = await createMailbox(app, 'batch-logs');
    // Subjects that an array's text form must quote: NULL, braces, commas, quotes, backslashes.
    const subjects = ['logged 0', 'NULL', '{a,b} "quoted"', 'back\\slash, comma', 'Ünïcödé {}'];
    const raws = await Promise.all(subjects.map((subject, i) => buildMessage({ to: box.email, subject, text: 'x'.repeat(100 * (i + 1)) })));
    // Written whole: a batch that fails is retried one delivery a transaction, which would hide a
    // broken batch-wide insert.
    const results = await withoutBatchRetries(() =>
      Promise.all(raws.map((raw, i) => app.services.ingest.deliver({ raw, targets: [{ mailboxId: box.id }], spam: { isSpam: i === 3, score: i }, incomingLog: { sender: `s${i}@example.org` } }))),
    );
    for (const [i, r] of results.entries()) {
      assert.equal(r.incomingLogs.length, 1);
      const row = await app.services.store.incomingLogs.get(r.incomingLogs[0]!.id);
      assert.equal(row?.subject, subjects[i]);
      assert.equal(Number(row?.size_bytes), raws[i]!.length);
      assert.equal(Number(row?.is_spam), i === 3 ? 1 : 0);
      assert.equal(row?.mailbox_id, box.id);
    }
  });

  test('concurrent deliveries are all stored, once each, with distinct UIDs in each folder', async () => {
    const raws = await Promise.all(
      Array.from({ length: 90 }, (_, i) => buildMessage({ to: boxes[i % 3]!.email, subject: `concurrent ${i}`, text: `body ${i}`, messageId: `<c${i}@batch.test>` })),
    );
    // Shared batches, all written whole: none falls back to one transaction per delivery (which
    // would hide, say, two deliveries of one batch given the same search key).
    const results = await withoutBatchRetries(() => Promise.all(raws.map((raw, i) => app.services.ingest.deliver({ raw, targets: [{ mailboxId: boxes[i % 3]!.id }] }))));
    assert.equal(results.filter((r) => r.delivered.length === 1).length, 90);
    for (const box of boxes) {
      const ids = results.flatMap((r) => r.delivered).filter((d) => d.mailboxId === box.id).map((d) => d.messageId);
      assert.equal(new Set(ids).size, 30);
      assert.equal(await app.services.store.messageQuery.count({ mailboxId: box.id }), 30);
      const inbox = (await app.services.store.folders.byRole(box.id, 'inbox'))!;
      const uids = (await Promise.all(ids.map((id) => app.services.store.messages.memberships(id)))).flat().filter((m) => m.folder_id === inbox.id).map((m) => m.uid);
      assert.equal(uids.length, 30);
      assert.equal(new Set(uids).size, 30, 'every message has its own UID');
      // The raw bytes of each stored message read back whole.
      const page = await app.api('GET', '/api/v1/mailbox/messages?limit=100', { token: box.key });
      assert.equal(page.status, 200);
      assert.equal(page.body.data.length, 30);
    }
  });

  test('a delivery that fails in its transaction fails alone, with its own error; the rest of its batch is stored', async () => {
    const box = boxes[0]!;
    const before = await app.services.store.messageQuery.count({ mailboxId: box.id });
    const raws = await Promise.all(Array.from({ length: 20 }, (_, i) => buildMessage({ to: box.email, subject: `mixed ${i}`, messageId: `<m${i}@batch.test>` })));
    // Every delivery has writes of its own (as a send's have), so all are written on the store's
    // connection, in shared batches, on both backends.
    const refusal = new AppError('insufficient_permissions', 'refused by a hook');
    const outcomes = await Promise.allSettled(
      raws.map((raw, i) =>
        app.services.ingest.deliver({
          raw,
          targets: [{ mailboxId: box.id }],
          inTransaction: async () => {
            if (i === 7) throw refusal;
          },
        }),
      ),
    );
    assert.equal(outcomes[7]!.status, 'rejected');
    assert.equal((outcomes[7] as PromiseRejectedResult).reason, refusal, 'the caller gets the error its hook threw (an AppError keeps its class and code)');
    assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 19);
    assert.equal(await app.services.store.messageQuery.count({ mailboxId: box.id }), before + 19);
    const subjects = (await app.api('GET', '/api/v1/mailbox/messages?limit=100', { token: box.key })).body.data.map((m: { subject: string }) => m.subject);
    assert.ok(!subjects.includes('mixed 7'));
    assert.ok(subjects.includes('mixed 6') && subjects.includes('mixed 8'));
  });

  test('on PostgreSQL the events of a batch wake the other processes with one NOTIFY, sent after the last of them is committed', { skip: backend.name !== 'postgres' && 'NOTIFY is PostgreSQL\'s; SQLite processes poll the log' }, async () => {
    const box = boxes[2]!;
    const raws = await Promise.all(Array.from({ length: 12 }, (_, i) => buildMessage({ to: box.email, subject: `announced ${i}`, text: `body ${i}` })));
    const store = app.services.store;
    // What another process hears: a notice on the channel, after which it reads the log.
    const seen: number[] = [];
    const reads: Promise<void>[] = [];
    const unlisten = await store.listenEvents(() => {
      reads.push(store.events.latestSeq().then((seq) => void seen.push(seq)));
    });
    try {
      const results = await Promise.all(raws.map((raw) => app.services.ingest.deliver({ raw, targets: [{ mailboxId: box.id }], announce: { sender: 'someone@example.com' } })));
      assert.equal(results.filter((r) => r.delivered.length === 1).length, 12);
      const last = await store.events.latestSeq();
      // Notices arrive asynchronously: wait for the one that covers the last event.
      for (let i = 0; i < 100 && !seen.includes(last); i++) {
        await new Promise((r) => setTimeout(r, 20));
        await Promise.all(reads);
      }
      await new Promise((r) => setTimeout(r, 100));
      await Promise.all(reads);
      assert.ok(seen.includes(last), 'a notice came after the last event was committed');
      assert.ok(seen.length >= 1 && seen.length <= 3, `12 events in shared batches woke the listener ${seen.length} times`);
    } finally {
      await unlisten();
    }
  });

  test("a batch's messages are each found by search; on SQLite their full-text rows make one FTS5 segment a batch", async () => {
    const box = boxes[1]!;
    const words = Array.from({ length: 12 }, (_, i) => `segmentword${'abcdefghijkl'[i]}`);
    const raws = await Promise.all(words.map((w, i) => buildMessage({ to: box.email, subject: `indexed ${i}`, text: `The word ${w} is in this body only.` })));
    // SQLite: FTS5 writes the rows a transaction added as one new segment at its COMMIT, unless a
    // statement opening a savepoint (every UPDATE or upsert of a delivery) makes it write them
    // earlier. With merges off (automatic ones, and those forced once a level holds 16 segments),
    // each segment written stays countable.
    const file = backend.name === 'sqlite' ? new SqliteDatabase(join(app.config.dataDir, 'mailmux.sqlite')) : null;
    const segments = (): Set<number> => new Set((file!.prepare('SELECT DISTINCT id >> 37 AS seg FROM messages_fts_data WHERE id >> 37 > 0').all() as { seg: number }[]).map((r) => r.seg));
    let batches = 0;
    app.services.ingest.onBatchWritten(() => batches++);
    try {
      file?.exec("INSERT INTO messages_fts(messages_fts, rank) VALUES ('automerge', 0); INSERT INTO messages_fts(messages_fts, rank) VALUES ('crisismerge', 1000)");
      const before = file ? segments() : new Set<number>();
      // A hook of their own keeps the deliveries on the store's connection, where its batches are heard.
      const results = await Promise.all(raws.map((raw) => app.services.ingest.deliver({ raw, targets: [{ mailboxId: box.id }], inTransaction: async () => {} })));
      assert.equal(results.filter((r) => r.delivered.length === 1).length, 12);
      if (file) {
        const added = [...segments()].filter((s) => !before.has(s)).length;
        assert.ok(batches >= 1 && batches < 12, `deliveries shared batches (${batches})`);
        assert.equal(added, batches, 'one new full-text segment for each batch, not one for each message');
      }
    } finally {
      file?.exec("INSERT INTO messages_fts(messages_fts, rank) VALUES ('automerge', 4); INSERT INTO messages_fts(messages_fts, rank) VALUES ('crisismerge', 16)");
      file?.close();
    }
    for (const [i, w] of words.entries()) {
      const found = await app.api('GET', `/api/v1/mailbox/messages?q=${w}`, { token: box.key });
      assert.equal(found.status, 200);
      assert.deepEqual(
        found.body.data.map((m: { subject: string }) => m.subject),
        [`indexed ${i}`],
      );
    }
  });

  test('on PostgreSQL each message\'s tsvector holds the words of its subject, addresses and body, and the message is found by them', { skip: backend.name !== 'postgres' && 'SQLite indexes with FTS5' }, async () => {
    const box = boxes[0]!;
    const client = new pg.Client({ connectionString: app.config.databaseUrl!, options: `-c search_path=${app.pgSchema!}` });
    await client.connect();
    try {
      const raws = await Promise.all(
        Array.from({ length: 4 }, (_, k) => buildMessage({ from: `Vector Sender <vsender${k}@example.org>`, to: box.email, subject: `Vectorsubject ${k}`, text: `Vectorbody${k} appears once; so does Ünïcödé${k}.` })),
      );
      const results = await Promise.all(raws.map((raw) => app.services.ingest.deliver({ raw, targets: [{ mailboxId: box.id }] })));
      for (const [k, raw] of raws.entries()) {
        // The lexemes stored are those PostgreSQL's parse of the folded words gives.
        const search = prepareMessage(await parseMessage(raw)).search;
        const doc = `${search.subject}\n${search.addresses}\n${search.body}`.replace(/[^\p{L}\p{N}]+/gu, ' ');
        const row = (await client.query<{ mine: string[]; theirs: string[] }>(
          `SELECT ARRAY(SELECT lexeme FROM unnest(search) ORDER BY 1) AS mine, ARRAY(SELECT lexeme FROM unnest(to_tsvector('simple', $2)) ORDER BY 1) AS theirs FROM messages WHERE id = $1`,
          [results[k]!.delivered[0]!.messageId, doc],
        )).rows[0];
        assert.ok(row?.mine.includes(`unicode${k}`), `${k}: the folded body word is indexed`);
        assert.deepEqual(row?.mine, row?.theirs, `${k}: the stored tsvector has the message's words`);
        for (const q of [`vectorsubject`, `vectorbody${k}`, `vsender${k}@example.org`, `ÜNICODE${k}`]) {
          const found = await app.api('GET', `/api/v1/mailbox/messages?q=${encodeURIComponent(q)}&limit=100`, { token: box.key });
          assert.equal(found.status, 200);
          assert.ok(found.body.data.some((m: { subject: string }) => m.subject === `Vectorsubject ${k}`), `${k} is found by ${q}`);
        }
      }
      const none = await app.api('GET', `/api/v1/mailbox/messages?q=${'x'.repeat(3000)}`, { token: box.key });
      assert.equal(none.status, 200, 'a word too long to be indexed finds nothing, and is no error');
      assert.deepEqual(none.body.data, []);
    } finally {
      await client.end();
    }
  });
});
