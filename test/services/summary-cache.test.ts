// List pages write summaries kept in the summary cache (services/mail/summary-cache.ts). What a
// client depends on: a page shows every change to a message at once, whoever made it, and is the
// same as the summaries read from the rows.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { iso } from '../../src/core/clock.ts';
import { SummaryCache } from '../../src/services/mail/summary-cache.ts';
import { describeEachBackend } from '../helpers/backends.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { createMailbox, deliver, type TestMailbox } from '../helpers/mail.ts';

test('summary cache: an entry is served only at the modseq it was written at; first in, first out', () => {
  const c = new SummaryCache(2);
  c.set('msg_a', 5, '{"a":5}');
  assert.equal(c.get('msg_a', 5), '{"a":5}');
  assert.equal(c.get('msg_a', 6), undefined);
  c.set('msg_a', 6, '{"a":6}');
  assert.equal(c.get('msg_a', 5), undefined);
  assert.equal(c.get('msg_a', 6), '{"a":6}');
  c.set('msg_b', 1, '{"b":1}');
  c.set('msg_c', 1, '{"c":1}');
  assert.equal(c.size, 2);
  assert.equal(c.get('msg_a', 6), undefined, 'the oldest entry went');
  assert.equal(c.get('msg_c', 1), '{"c":1}');
  const off = new SummaryCache(0);
  off.set('msg_a', 1, '{}');
  assert.equal(off.get('msg_a', 1), undefined);
});

describeEachBackend('list pages and the summary cache', (backend) => {
  let app: TestApp;
  let mbx: TestMailbox;
  const ids: string[] = [];
  const T0 = Date.parse('2026-11-02T08:00:00Z');

  /** The page as the API sends it, and the same page built from summary rows with no cache. */
  async function pages(query = ''): Promise<{ api: Record<string, unknown>[]; rows: Record<string, unknown>[] }> {
    const r = await app.api('GET', `/api/v1/mailbox/messages?limit=10${query}`, { token: mbx.key });
    assert.equal(r.status, 200);
    const direct = await app.services.messages.list(mbx.id, { filter: {}, sort: { by: 'received_at', direction: 'desc' }, limit: 10 });
    // Attachment links carry a token made at each read; everything else must be the same bytes.
    const strip = (items: Record<string, unknown>[]) => items.map((m) => ({ ...m, attachments: (m.attachments as { filename: string }[]).map((a) => a.filename) }));
    return { api: strip(r.body.data), rows: strip(JSON.parse(JSON.stringify(direct.items))) };
  }

  before(async () => {
    app = await startTestApp(backend);
    mbx = await createMailbox(app);
    ids.push(await deliver(app, mbx, { subject: 'first', text: 'one' }, { receivedAt: T0 }));
    ids.push(await deliver(app, mbx, { subject: 'second', text: 'two', attachments: [{ filename: 'a.txt', content: Buffer.from('attached'), contentType: 'text/plain' }] }, { receivedAt: T0 + 1000 }));
    ids.push(await deliver(app, mbx, { subject: 'third', text: 'three' }, { receivedAt: T0 + 2000 }));
  });
  after(async () => app.close());

  test('a page read again is the same as the rows, and shows changes made through the API at once', async () => {
    const first = await pages();
    assert.deepEqual(first.api.map((m) => m.id), [ids[2], ids[1], ids[0]]);
    assert.deepEqual(first.api, first.rows);
    assert.deepEqual((await pages()).api, first.api, 'the second read (from the cache) is the same');

    const patched = await app.api('PATCH', `/api/v1/mailbox/messages/${ids[0]}`, { token: mbx.key, body: { seen: true, keywords: { triaged: true } } });
    assert.equal(patched.status, 200);
    const after = await pages();
    const m = after.api.find((x) => x.id === ids[0])!;
    assert.deepEqual(m.flags, { seen: true, flagged: false, draft: false, answered: false });
    assert.deepEqual(m.keywords, ['$seen', 'triaged']);
    assert.deepEqual(after.api, after.rows);
  });

  test('a change written to the store by another writer (another process, the CLI) shows on the next page', async () => {
    await pages();
    // Straight to the store: nothing in this process hears of it, only the row's modseq changes.
    const row = (await app.services.store.messages.get(ids[2]!))!;
    await app.services.store.transaction((tx) => tx.messages.setKeywords(row, ['$flagged', 'from_elsewhere'], iso(Date.now())));
    const { api, rows } = await pages();
    const m = api.find((x) => x.id === ids[2])!;
    assert.deepEqual(m.keywords, ['$flagged', 'from_elsewhere']);
    assert.equal((m.flags as { flagged: boolean }).flagged, true);
    assert.deepEqual(api, rows);
  });

  test('moves and deletes show on the next page', async () => {
    await pages();
    const del = await app.api('DELETE', `/api/v1/mailbox/messages/${ids[2]}`, { token: mbx.key });
    assert.equal(del.status, 200);
    const folders = (await app.api('GET', '/api/v1/mailbox/folders', { token: mbx.key })).body.data as { id: string; role: string | null }[];
    const trash = folders.find((f) => f.role === 'trash')!;
    const moved = await pages();
    assert.deepEqual(moved.api.find((x) => x.id === ids[2])?.folder_ids, [trash.id]);
    assert.deepEqual(moved.api, moved.rows);

    assert.equal((await app.api('DELETE', `/api/v1/mailbox/messages/${ids[2]}?permanent=true`, { token: mbx.key })).status, 200);
    const gone = await pages();
    assert.deepEqual(gone.api.map((x) => x.id), [ids[1], ids[0]]);
    assert.deepEqual(gone.api, gone.rows);
  });

  test('sorts other than received_at and folder pages write the same summaries', async () => {
    for (const q of ['&sort_by=subject&sort_direction=asc', '&sort_by=size_bytes&sort_direction=desc']) {
      const r = await app.api('GET', `/api/v1/mailbox/messages?limit=10${q}`, { token: mbx.key });
      assert.equal(r.status, 200, q);
      assert.equal(r.body.data.length, 2, q);
    }
    const subj = await app.api('GET', '/api/v1/mailbox/messages?limit=1&sort_by=subject&sort_direction=asc', { token: mbx.key });
    assert.equal(subj.body.data[0].subject, 'first');
    const next = await app.api('GET', `/api/v1/mailbox/messages?limit=1&sort_by=subject&sort_direction=asc&cursor=${subj.body.pagination.next_cursor}`, { token: mbx.key });
    assert.equal(next.body.data[0].subject, 'second');
    const inbox = await app.api('GET', '/api/v1/mailbox/messages?limit=10&folder_id=inbox', { token: mbx.key });
    assert.deepEqual(inbox.body.data.map((m: { id: string }) => m.id), [ids[1], ids[0]]);
    assert.deepEqual(inbox.body.data.find((m: { id: string }) => m.id === ids[0]).keywords, ['$seen', 'triaged']);
  });

  test('thread pages: each last message is the same as its row and shows changes at once', async () => {
    type Thread = { last_message: Record<string, unknown> | null };
    const strip = (items: Thread[]): Thread[] =>
      items.map((t) => ({ ...t, last_message: t.last_message ? { ...t.last_message, attachments: (t.last_message.attachments as { filename: string }[]).map((a) => a.filename) } : null }));
    const page = async () => {
      const r = await app.api('GET', '/api/v1/mailbox/threads?limit=10', { token: mbx.key });
      assert.equal(r.status, 200);
      const direct = await app.services.threads.list(mbx.id, {}, 'desc', 10);
      const api = strip(r.body.data);
      assert.deepEqual(api, strip(JSON.parse(JSON.stringify(direct.items))));
      return api;
    };
    await page();
    const before = (await page()).find((t) => (t.last_message as { id: string } | null)?.id === ids[0])!;
    assert.equal((before.last_message!.flags as { flagged: boolean }).flagged, false);
    assert.equal((await app.api('PATCH', `/api/v1/mailbox/messages/${ids[0]}`, { token: mbx.key, body: { flagged: true } })).status, 200);
    const after = (await page()).find((t) => (t.last_message as { id: string } | null)?.id === ids[0])!;
    assert.equal((after.last_message!.flags as { flagged: boolean }).flagged, true);
  });
});
