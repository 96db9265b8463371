// The counters that answer counts, folder totals and thread summaries (migration 009) and the
// folders kept on each message's row (migration 010) against the real state after every kind of
// write, the SQLite search path that reads matches in search-key order against the plain sorted
// query, page by page, and the list pages written as
// JSON text from compiled statements against the object path, for every filter, sort and cursor,
// on both backends.
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
    // Summaries read each message's folders from its row (messages.folder_ids, migration 010): the
    // same as its memberships in message_folders.
    const listed = (await call(mbx, 'GET', '/api/v1/mailbox/messages?limit=100')).body.data as { id: string; folder_ids: string[] }[];
    const memberships = await app.services.store.messages.folderIdsOf(listed.map((m) => m.id));
    for (const m of listed) assert.deepEqual(m.folder_ids, [...(memberships.get(m.id) ?? [])].sort(), `message ${m.id} folders`);
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

  test('folder pages (SQLite: read from the folder index) equal the sorted query, with messages received in the same instant', async () => {
    const f = await createMailbox(app, 'folder-f');
    const offsets = [0, 0, 0, 1, 2, 2, 1000, 1000, 60_000, 60_000, 60_000, 60_001, 3600_000];
    const ids: string[] = [];
    for (const [i, off] of offsets.entries()) ids.push(await deliver(app, f, { subject: `folder ${i}`, text: `message ${i}` }, { receivedAt: T0 + off }));
    // Some to Trash (one of them back again), some read.
    for (const i of [1, 4, 7, 8, 12]) assert.equal((await call(f, 'DELETE', `/api/v1/mailbox/messages/${ids[i]}`)).status, 200);
    assert.equal((await call(f, 'POST', '/api/v1/mailbox/messages:batch-update', { ids: [ids[0], ids[2], ids[7]], seen: true })).status, 200);
    const folders = (await call(f, 'GET', '/api/v1/mailbox/folders?limit=100')).body.data as { id: string; role: string | null }[];
    const trash = folders.find((x) => x.role === 'trash')!.id;
    const inbox = folders.find((x) => x.role === 'inbox')!.id;
    const archive = folders.find((x) => x.role === 'archive')!.id;
    const q = app.services.store.messageQuery;
    for (const [folderId, extra, filter] of [
      [inbox, '', {}],
      [trash, '', {}],
      [archive, '', {}],
      [inbox, '&is_unread=true', { isUnread: true }],
      [trash, '&is_unread=false', { isUnread: false }],
    ] as const) {
      for (const direction of ['desc', 'asc'] as const) {
        // The reference: the same filter walked in (received_at, id) order without the folder's index.
        const all = await q.ids({ mailboxId: f.id, ...filter }, { by: 'received_at', direction }, 1000);
        const inFolder = await app.services.store.messages.folderIdsOf(all);
        const expected = all.filter((id) => inFolder.get(id)?.includes(folderId));
        for (const limit of [1, 2, 3, 50]) {
          const got: string[] = [];
          let cursor = '';
          for (let pages = 0; pages < 100; pages++) {
            const r = await call(f, 'GET', `/api/v1/mailbox/messages?folder_id=${folderId}${extra}&sort_by=received_at&sort_direction=${direction}&limit=${limit}${cursor}`);
            assert.equal(r.status, 200);
            got.push(...r.body.data.map((m: { id: string }) => m.id));
            if (!r.body.pagination.has_more) break;
            cursor = `&cursor=${r.body.pagination.next_cursor}`;
          }
          assert.deepEqual(got, expected, `folder ${folderId}${extra} ${direction} limit ${limit}`);
        }
      }
    }
  });

  test('list pages (compiled per shape, JSON written from rows) equal the object path for every filter, sort and cursor', async () => {
    const e = await createMailbox(app, 'shapes-e');
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      ids.push(
        await deliver(
          app,
          e,
          {
            from: i % 2 === 0 ? 'Zoë "Z" Ünïcode <zoe@example.org>' : 'bob@example.net',
            cc: i % 3 === 0 ? 'Carol <carol@example.org>, "Dan, D." <dan@example.org>' : undefined,
            subject: `${i % 2 === 0 ? 'Invoice' : 'Meeting'} number ${i} "quoted" \\ back`,
            text: i % 2 === 0 ? 'alpha invoice body' : 'beta meeting body',
            headers: { 'X-Tag': `tag-${i % 3}` },
            ...(i % 3 === 1 ? { attachments: [{ filename: 'résumé "1".pdf', content: Buffer.from('pdf bytes'), contentType: 'application/pdf' }] } : {}),
          },
          { receivedAt: T0 + (i % 4) * minute, spam: i === 6 },
        ),
      );
    }
    assert.equal((await call(e, 'PATCH', `/api/v1/mailbox/messages/${ids[1]}`, { seen: true, flagged: true, keywords: { triaged: true } })).status, 200);
    assert.equal((await call(e, 'PATCH', `/api/v1/mailbox/messages/${ids[2]}`, { keywords: { triaged: true } })).status, 200);
    const threadId = (await call(e, 'GET', `/api/v1/mailbox/messages/${ids[0]}`)).body.data.thread_id as string;
    const filters = [
      '', 'folder_id=inbox', 'folder_id=spam', `thread_id=${threadId}`, 'q=invoice', 'q=%21%21', 'q=invoice&is_unread=true', 'from=zoe', 'to=shapes', 'cc=carol', 'bcc=nobody',
      'subject=meeting', 'body=alpha', 'header_name=x-tag', 'header_name=x-tag&header_value=tag-1', 'min_size_bytes=10', 'max_size_bytes=100000', 'keyword=triaged',
      'not_keyword=triaged', `after=${new Date(T0 + minute).toISOString()}`, `before=${new Date(T0 + 2 * minute).toISOString()}`, 'has_attachment=true', 'has_attachment=false',
      'is_unread=false', 'folder_id=inbox&is_unread=true&keyword=triaged&from=zoe&has_attachment=false',
    ];
    const sorts = ['', 'sort_by=received_at&sort_direction=asc', 'sort_by=sent_at', 'sort_by=subject&sort_direction=asc', 'sort_by=from', 'sort_by=to&sort_direction=asc', 'sort_by=size_bytes'];
    let compared = 0;
    for (const filter of filters) {
      for (const sort of filter.startsWith('q=') || filter.startsWith('thread_id') ? ['', 'sort_by=received_at&sort_direction=asc', 'sort_by=subject'] : sorts) {
        const qs = [filter, sort, 'limit=2'].filter(Boolean).join('&');
        let cursor = '';
        for (let pages = 0; pages < 10; pages++) {
          const r = await call(e, 'GET', `/api/v1/mailbox/messages?${qs}${cursor}`);
          assert.equal(r.status, 200, `${qs}${cursor}: ${r.text}`);
          // The object path, as the route built it before (services.messages.list + route.ts's envelope).
          const params = Object.fromEntries(new URLSearchParams(`${qs}${cursor}`));
          const obj = await app.services.messages.list(e.id, {
            filter: {
              ...(params.folder_id ? { folderId: params.folder_id } : {}), ...(params.thread_id ? { threadId: params.thread_id } : {}), ...(params.q ? { q: params.q } : {}),
              ...(params.from ? { from: params.from } : {}), ...(params.to ? { to: params.to } : {}), ...(params.cc ? { cc: params.cc } : {}), ...(params.bcc ? { bcc: params.bcc } : {}),
              ...(params.subject ? { subject: params.subject } : {}), ...(params.body ? { body: params.body } : {}), ...(params.header_name ? { headerName: params.header_name } : {}),
              ...(params.header_value ? { headerValue: params.header_value } : {}), ...(params.min_size_bytes ? { minSize: Number(params.min_size_bytes) } : {}),
              ...(params.max_size_bytes ? { maxSize: Number(params.max_size_bytes) } : {}), ...(params.keyword ? { keyword: params.keyword } : {}), ...(params.not_keyword ? { notKeyword: params.not_keyword } : {}),
              ...(params.after ? { after: params.after } : {}), ...(params.before ? { before: params.before } : {}),
              ...(params.has_attachment ? { hasAttachment: params.has_attachment === 'true' } : {}), ...(params.is_unread ? { isUnread: params.is_unread === 'true' } : {}),
            },
            sort: { by: (params.sort_by ?? 'received_at') as never, direction: (params.sort_direction ?? 'desc') as never },
            limit: 2,
            ...(params.cursor ? { cursor: params.cursor } : {}),
          });
          const expected = { ok: true, data: obj.items, meta: { request_id: r.body.meta.request_id }, pagination: { has_more: obj.hasMore, ...(obj.nextCursor ? { next_cursor: obj.nextCursor } : {}) } };
          // Download links carry a token signed with the current time (its expiry second): compared without it.
          const untokened = (t: string): string => t.replace(/download_token=[0-9a-z]+\.[\w-]+/g, 'download_token=T');
          assert.equal(untokened(r.text), untokened(JSON.stringify(expected)), `${qs}${cursor}`);
          compared++;
          if (!r.body.pagination.has_more) break;
          cursor = `&cursor=${r.body.pagination.next_cursor}`;
        }
      }
    }
    assert.ok(compared > 150, `compared ${compared} pages`);

    // Thread lists: the JSON text against the object path too.
    for (const qs of ['limit=2', 'limit=2&sort_direction=asc', 'limit=3&folder_id=inbox', 'limit=2&participant=zoe@example.org', 'limit=2&is_unread=true', 'limit=2&q=invoice']) {
      let cursor = '';
      for (let pages = 0; pages < 10; pages++) {
        const r = await call(e, 'GET', `/api/v1/mailbox/threads?${qs}${cursor}`);
        assert.equal(r.status, 200, `${qs}${cursor}: ${r.text}`);
        const params = Object.fromEntries(new URLSearchParams(`${qs}${cursor}`));
        const filter = { ...(params.folder_id ? { folderId: params.folder_id } : {}), ...(params.participant ? { participant: params.participant } : {}), ...(params.is_unread ? { isUnread: true } : {}), ...(params.q ? { q: params.q } : {}) };
        const obj = await app.services.threads.list(e.id, filter, params.sort_direction === 'asc' ? 'asc' : 'desc', Number(params.limit), params.cursor);
        const expected = { ok: true, data: obj.items, meta: { request_id: r.body.meta.request_id, query_state: obj.queryState }, pagination: { has_more: obj.hasMore, ...(obj.nextCursor ? { next_cursor: obj.nextCursor } : {}) } };
        const untokened = (t: string): string => t.replace(/download_token=[0-9a-z]+\.[\w-]+/g, 'download_token=T');
        assert.equal(untokened(r.text), untokened(JSON.stringify(expected)), `${qs}${cursor}`);
        if (!r.body.pagination.has_more) break;
        cursor = `&cursor=${r.body.pagination.next_cursor}`;
      }
    }
  });
});
