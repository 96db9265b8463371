// The counters that answer counts, folder totals and thread summaries (migration 009) against the
// real state after every kind of write, and the SQLite search path that reads matches in
// search-key order against the plain sorted query, page by page, on both backends.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { describeEachBackend } from '../helpers/backends.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { buildMessage, createMailbox, deliver, type TestMailbox } from '../helpers/mail.ts';

const T0 = Date.parse('2026-11-01T08:00:00Z');
const minute = 60_000;

describeEachBackend('mailbox counters and search order', (backend) => {
  let app: TestApp;
  let a: TestMailbox;
  let b: TestMailbox;
  const call = (mbx: TestMailbox, method: string, url: string, body?: unknown) => app.api(method, url, { token: mbx.key, ...(body !== undefined ? { body } : {}) });

  before(async () => {
    app = await startTestApp(backend);
    a = await createMailbox(app, 'counters-a');
    b = await createMailbox(app, 'counters-b');
  });
  after(async () => app.close());

  /** Every counter-backed answer of the API against count(*) and the messages themselves. */
  async function check(mbx: TestMailbox): Promise<void> {
    const q = app.services.store.messageQuery;
    const real = (f: Record<string, unknown>) => q.countAll({ mailboxId: mbx.id, ...f });
    const count = async (qs: string) => (await call(mbx, 'GET', `/api/v1/mailbox/messages/count${qs}`)).body.data.total as number;
    assert.equal(await count(''), await real({}));
    assert.equal(await count('?is_unread=true'), await real({ isUnread: true }));
    assert.equal(await count('?is_unread=false'), await real({ isUnread: false }));
    const folders = (await call(mbx, 'GET', '/api/v1/mailbox/folders?limit=100')).body.data as { id: string; total_messages: number; unread_messages: number }[];
    for (const f of folders) {
      assert.equal(f.total_messages, await real({ folderId: f.id }), `folder ${f.id} total`);
      assert.equal(f.unread_messages, await real({ folderId: f.id, isUnread: true }), `folder ${f.id} unread`);
      assert.equal(await count(`?folder_id=${f.id}`), f.total_messages);
      assert.equal(await count(`?folder_id=${f.id}&is_unread=true`), f.unread_messages);
    }
    const threads = (await call(mbx, 'GET', '/api/v1/mailbox/threads?limit=100')).body.data as { id: string; message_count: number; unread_count: number; has_attachments: boolean; folder_ids: string[]; last_message: { id: string } | null }[];
    let inThreads = 0;
    for (const t of threads) {
      const msgs = (await call(mbx, 'GET', `/api/v1/mailbox/threads/${t.id}/messages?limit=100&sort=desc`)).body.data as { id: string; folder_ids: string[]; flags: { seen: boolean }; has_attachments: boolean }[];
      assert.equal(t.message_count, msgs.length, `thread ${t.id} count`);
      assert.equal(t.message_count, await real({ threadId: t.id }));
      assert.equal(t.unread_count, msgs.filter((m) => !m.flags.seen).length, `thread ${t.id} unread`);
      assert.equal(t.has_attachments, msgs.some((m) => m.has_attachments));
      assert.deepEqual([...t.folder_ids].sort(), [...new Set(msgs.flatMap((m) => m.folder_ids))].sort(), `thread ${t.id} folders`);
      assert.equal(t.last_message?.id, msgs[0]?.id);
      inThreads += msgs.length;
    }
    assert.equal(inThreads, await real({}), 'every message is in one listed thread');
  }

  test('counters match the real state after ingest, keyword changes, moves and deletes', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const reply = i % 3 !== 0;
      ids.push(
        await deliver(
          app,
          a,
          {
            subject: `${reply ? 'Re: ' : ''}topic ${Math.floor(i / 3)}`,
            text: `message ${i}`,
            messageId: `<c${i}@example.org>`,
            ...(reply ? { inReplyTo: `<c${i - 1}@example.org>` } : {}),
            ...(i % 4 === 0 ? { attachments: [{ filename: 'a.txt', content: Buffer.from('attached'), contentType: 'text/plain' }] } : {}),
          },
          { receivedAt: T0 + i * minute, spam: i === 11 },
        ),
      );
    }
    // One message stored in both mailboxes.
    await app.services.ingest.deliver({ raw: await buildMessage({ to: a.email, subject: 'to both', text: 'shared' }), targets: [{ mailboxId: a.id }, { mailboxId: b.id }] });
    await deliver(app, b, { subject: 'only b', text: 'b' });
    await check(a);
    await check(b);

    // Keyword changes: seen on, off, unchanged, flagged only.
    assert.equal((await call(a, 'PATCH', `/api/v1/mailbox/messages/${ids[1]}`, { seen: true })).status, 200);
    assert.equal((await call(a, 'PATCH', `/api/v1/mailbox/messages/${ids[1]}`, { seen: true, flagged: true })).status, 200);
    assert.equal((await call(a, 'POST', '/api/v1/mailbox/messages:batch-update', { ids: [ids[2], ids[3], ids[4], ids[11]], seen: true })).status, 200);
    assert.equal((await call(a, 'POST', '/api/v1/mailbox/messages:batch-update', { ids: [ids[3]], seen: false, keywords: { triaged: true } })).status, 200);
    await check(a);

    // Moves to Trash (a read and an unread message), then permanent deletes from Trash and elsewhere.
    assert.equal((await call(a, 'DELETE', `/api/v1/mailbox/messages/${ids[2]}`)).status, 200);
    assert.equal((await call(a, 'DELETE', `/api/v1/mailbox/messages/${ids[5]}`)).status, 200);
    await check(a);
    assert.equal((await call(a, 'PATCH', `/api/v1/mailbox/messages/${ids[5]}`, { seen: true })).status, 200);
    await check(a);
    assert.equal((await call(a, 'DELETE', `/api/v1/mailbox/messages/${ids[2]}?permanent=true`)).status, 200);
    assert.equal((await call(a, 'POST', '/api/v1/mailbox/messages:batch-delete', { ids: [ids[6], ids[7], ids[8]], permanent: true })).status, 200);
    assert.equal((await call(a, 'POST', '/api/v1/mailbox/messages:batch-delete', { ids: [ids[0], ids[9]] })).status, 200);
    await check(a);
    await check(b);

    // A deleted mailbox takes its messages with it; the other mailbox's counters are untouched.
    assert.equal((await app.api('DELETE', `/api/v1/mailboxes/${b.id}`)).status, 200);
    await app.services.messages.purgeMailbox(b.id);
    assert.equal(await app.services.store.messageQuery.count({ mailboxId: b.id }), 0);
    assert.equal(await app.services.store.messageQuery.countAll({ mailboxId: b.id }), 0);
    await check(a);
  });

  test('search pages equal the sorted query, with many messages in one 10 ms slice', async () => {
    const c = await createMailbox(app, 'search-c');
    const d = await createMailbox(app, 'search-d');
    // Same instant, 1-3 ms apart (one slice), a second apart, an hour apart; another mailbox's
    // matches interleaved.
    // The last slice holds more matches than a small page reads ahead (a second read).
    const offsets = [0, 0, 0, 1, 2, 3, 3, 9, 10, 1000, 1000, 1001, 3600_000, 3600_000, 3600_005, 7200_000, 7200_000, 7200_000, 7200_000, 7200_001, ...Array<number>(6).fill(7200_000), 7200_002, 7200_002];
    for (const [i, off] of offsets.entries()) {
      await deliver(app, c, { subject: `alpha ${i}`, text: i % 2 === 0 ? 'alpha beta' : 'alpha gamma' }, { receivedAt: T0 + off });
      await deliver(app, d, { subject: `alpha other ${i}`, text: 'alpha beta' }, { receivedAt: T0 + off });
      if (i % 3 === 0) await deliver(app, c, { subject: `no match ${i}`, text: 'delta' }, { receivedAt: T0 + off });
    }
    const q = app.services.store.messageQuery;
    for (const [query, extra] of [
      ['alpha', ''],
      ['alpha beta', ''],
      ['alpha', '&is_unread=true'],
    ] as const) {
      for (const direction of ['desc', 'asc'] as const) {
        const expected = await q.ids({ mailboxId: c.id, ...(query === 'alpha' ? { q: 'alpha' } : { q: 'alpha beta' }) }, { by: 'received_at', direction }, 1000);
        assert.equal(expected.length, query === 'alpha' ? offsets.length : offsets.length / 2);
        for (const limit of [1, 2, 3, 7, 50]) {
          const got: string[] = [];
          let cursor = '';
          for (let pages = 0; pages < 100; pages++) {
            const r = await call(c, 'GET', `/api/v1/mailbox/messages?q=${encodeURIComponent(query)}${extra}&sort_by=received_at&sort_direction=${direction}&limit=${limit}${cursor}`);
            assert.equal(r.status, 200);
            got.push(...r.body.data.map((m: { id: string }) => m.id));
            if (!r.body.pagination.has_more) break;
            cursor = `&cursor=${r.body.pagination.next_cursor}`;
          }
          assert.deepEqual(got, expected, `q=${query}${extra} ${direction} limit ${limit}`);
        }
      }
    }
    const count = await call(c, 'GET', '/api/v1/mailbox/messages/count?q=alpha');
    assert.equal(count.body.data.total, offsets.length);
  });
});
