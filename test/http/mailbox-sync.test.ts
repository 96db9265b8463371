// Mailbox API sync: state tokens in the session, /changes (legacy and typed, every type, paging
// with limit / has_more), query-changes for messages and folders (a client that applies them ends
// with the server's list), invalid states, and change-log retention (old states get
// sync_required, no state token goes backwards).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { describeEachBackend } from '../helpers/backends.ts';
import { MutableClock, startTestApp, type TestApp } from '../helpers/app.ts';
import { createMailbox, deliver, type TestMailbox } from '../helpers/mail.ts';
import { MaintenanceWorker } from '../../src/workers/maintenance.ts';

const T0 = Date.parse('2026-11-10T08:00:00Z');
const minute = 60_000;
const day = 24 * 3600_000;

interface QC {
  old_query_state: string | null;
  new_query_state: string;
  has_more: boolean;
  removed: string[];
  added: { id: string; index: number }[];
  total: number | null;
}

/** What a JMAP client does with a query-changes answer. */
export function applyQueryChanges(list: string[], qc: Pick<QC, 'removed' | 'added'>): string[] {
  const removed = new Set(qc.removed);
  const out = list.filter((id) => !removed.has(id));
  for (const a of [...qc.added].sort((x, y) => x.index - y.index)) out.splice(a.index, 0, a.id);
  return out;
}

describeEachBackend('mailbox API sync', (backend) => {
  let app: TestApp;
  let mbx: TestMailbox;
  const clock = new MutableClock(T0);
  const get = (url: string) => app.api('GET', url, { token: mbx.key });
  const tick = (ms = minute) => {
    clock.t += ms;
    return clock.t;
  };
  const allIds = async (query = ''): Promise<string[]> => {
    const out: string[] = [];
    let cursor = '';
    for (;;) {
      const r = await get(`/api/v1/mailbox/messages?limit=100${query}${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(r.status, 200);
      out.push(...r.body.data.map((m: { id: string }) => m.id));
      if (!r.body.pagination.has_more) return out;
      cursor = r.body.pagination.next_cursor;
    }
  };
  /** Follows query-changes from a state until has_more is false; returns the list and the last state. */
  const followQuery = async (list: string[], state: string, query: string, limit: number) => {
    let current = list;
    for (let page = 0; page < 1000; page++) {
      const r = await get(`/api/v1/mailbox/messages/query-changes?since_query_state=${state}&limit=${limit}${query}`);
      assert.equal(r.status, 200, r.text);
      assert.ok(r.body.data.added.length <= limit, 'added stays within limit');
      current = applyQueryChanges(current, r.body.data);
      state = r.body.data.new_query_state;
      if (!r.body.data.has_more) return { list: current, state };
    }
    throw new Error('query-changes never finished');
  };

  before(async () => {
    app = await startTestApp(backend, {}, { clock });
    mbx = await createMailbox(app);
  });
  after(async () => app.close());

  test('the session reports every state and the sync capabilities', async () => {
    const s = (await get('/api/v1/mailbox/session')).body.data;
    for (const k of ['messages', 'folders', 'threads', 'submissions', 'identities', 'quotas']) assert.match(s.states[k], /^s[0-9a-z]+$/);
    assert.equal(s.capabilities.messages.changes, true);
    assert.equal(s.capabilities.messages.query_changes, true);
    assert.equal(s.capabilities.folders.query_changes, true);
    assert.equal(s.capabilities.sync.typed_changes, true);
    assert.deepEqual(s.capabilities.sync.query_changes, ['messages', 'folders']);
    assert.ok(s.endpoints.sync.includes('/mailbox/changes'));
  });

  test('without a since state /changes answers the current state and no changes', async () => {
    const s = (await get('/api/v1/mailbox/session')).body.data;
    const r = await get('/api/v1/mailbox/changes');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.data, { old_state: null, new_state: s.states.messages, has_more: false, created: [], updated: [], destroyed: [] });
    const f = await get('/api/v1/mailbox/folders/changes');
    assert.equal(f.body.data.new_state, s.states.folders);
    const q = await get('/api/v1/mailbox/quotas/changes');
    assert.equal(q.body.data.new_state, s.states.quotas);
    const sub = await get('/api/v1/mailbox/submissions/changes');
    assert.equal(sub.body.data.new_state, s.states.submissions);
  });

  test('legacy message changes: created, updated, destroyed, and merged within a window', async () => {
    const s0 = (await get('/api/v1/mailbox/changes')).body.data.new_state;
    const a = await deliver(app, mbx, { subject: 'a', text: 'a' }, { receivedAt: tick() });
    const b = await deliver(app, mbx, { subject: 'b', text: 'b' }, { receivedAt: tick() });
    const r1 = (await get(`/api/v1/mailbox/changes?since_state=${s0}`)).body.data;
    assert.deepEqual(r1.created.sort(), [a, b].sort());
    assert.deepEqual([r1.updated, r1.destroyed, r1.has_more, r1.old_state], [[], [], false, s0]);

    // created then updated in the same window is reported once, as created
    await app.api('PATCH', `/api/v1/mailbox/messages/${a}`, { token: mbx.key, body: { seen: true } });
    assert.deepEqual((await get(`/api/v1/mailbox/changes?since_state=${s0}`)).body.data.created.sort(), [a, b].sort());

    const s1 = (await get('/api/v1/mailbox/changes')).body.data.new_state;
    assert.equal(s1, (await get('/api/v1/mailbox/session')).body.data.states.messages);
    await app.api('PATCH', `/api/v1/mailbox/messages/${a}`, { token: mbx.key, body: { flagged: true } });
    await app.api('DELETE', `/api/v1/mailbox/messages/${b}?permanent=true`, { token: mbx.key });
    const c = await deliver(app, mbx, { subject: 'c', text: 'c' }, { receivedAt: tick() });
    await app.api('DELETE', `/api/v1/mailbox/messages/${c}?permanent=true`, { token: mbx.key });
    const r2 = (await get(`/api/v1/mailbox/changes?since_state=${s1}`)).body.data;
    // c was created and destroyed within the window: the client never saw it
    assert.deepEqual([r2.created, r2.updated, r2.destroyed], [[], [a], [b]]);
    assert.equal(r2.new_state, (await get('/api/v1/mailbox/session')).body.data.states.messages);
    // an unchanged state gives an empty answer with the same state
    const r3 = (await get(`/api/v1/mailbox/changes?since_state=${r2.new_state}`)).body.data;
    assert.deepEqual(r3, { old_state: r2.new_state, new_state: r2.new_state, has_more: false, created: [], updated: [], destroyed: [] });
  });

  test('limit pages the changes with has_more; new_state continues where the page stopped', async () => {
    const s0 = (await get('/api/v1/mailbox/changes')).body.data.new_state;
    const made: string[] = [];
    for (let i = 0; i < 7; i++) made.push(await deliver(app, mbx, { subject: `page ${i}`, text: 'p' }, { receivedAt: tick() }));
    await app.api('PATCH', `/api/v1/mailbox/messages/${made[0]}`, { token: mbx.key, body: { seen: true } });
    const seen: string[] = [];
    let state = s0;
    let pages = 0;
    for (;;) {
      const r = (await get(`/api/v1/mailbox/changes?since_state=${state}&limit=3`)).body.data;
      pages++;
      assert.ok(r.created.length + r.updated.length + r.destroyed.length <= 3);
      seen.push(...r.created, ...r.updated);
      state = r.new_state;
      if (!r.has_more) break;
    }
    assert.equal(pages, 3);
    assert.deepEqual([...new Set(seen)].sort(), [...made].sort());
    assert.equal(state, (await get('/api/v1/mailbox/session')).body.data.states.messages);
    assert.equal((await get('/api/v1/mailbox/changes?limit=0')).status, 400);
    assert.equal((await get('/api/v1/mailbox/changes?limit=501')).status, 400);
  });

  test('typed changes: every type with its own since state', async () => {
    const base = (await get('/api/v1/mailbox/changes?types=messages,folders,threads,submissions,identities,quotas')).body.data.types;
    assert.deepEqual(Object.keys(base).sort(), ['folders', 'identities', 'messages', 'quotas', 'submissions', 'threads']);
    for (const v of Object.values(base) as { old_state: null; created: string[] }[]) assert.equal(v.old_state, null);
    const id = await deliver(app, mbx, { subject: 'typed', text: 't', messageId: '<typed@example.org>' }, { receivedAt: tick() });
    await app.api('PATCH', '/api/v1/mailbox/identity', { token: mbx.key, body: { name: 'Agent Smith' } });
    const folder = (await app.api('POST', '/api/v1/mailbox/folders', { token: mbx.key, body: { name: 'Typed' } })).body.data;
    const q = Object.entries(base).map(([t, v]) => `${t}_since_state=${(v as { new_state: string }).new_state}`).join('&');
    const r = await get(`/api/v1/mailbox/changes?types=messages,folders,threads,submissions,identities,quotas&${q}`);
    assert.equal(r.status, 200);
    const t = r.body.data.types;
    const msg = (await get(`/api/v1/mailbox/messages/${id}`)).body.data;
    assert.deepEqual(t.messages.created, [id]);
    assert.deepEqual(t.threads.created, [msg.thread_id]);
    assert.deepEqual(t.folders.created, [folder.id]);
    assert.ok(t.folders.updated.includes(msg.folder_ids[0]), 'the inbox counts changed');
    const identity = (await get('/api/v1/mailbox/identity')).body.data;
    assert.deepEqual(t.identities.updated, [identity.id]);
    const quota = (await get('/api/v1/mailbox/quotas')).body.data[0];
    assert.deepEqual(t.quotas.updated, [quota.id]);
    assert.deepEqual([t.submissions.created, t.submissions.updated, t.submissions.destroyed], [[], [], []]);
    const session = (await get('/api/v1/mailbox/session')).body.data.states;
    for (const k of Object.keys(t)) assert.equal(t[k].new_state, session[k], k);
    // a subset of types; the legacy since_state serves as the messages state
    const sub = await get(`/api/v1/mailbox/changes?types=messages&since_state=${base.messages.new_state}`);
    assert.deepEqual(Object.keys(sub.body.data.types), ['messages']);
    assert.deepEqual(sub.body.data.types.messages.created, [id]);
    assert.equal((await get('/api/v1/mailbox/changes?types=messages,mailboxes')).status, 400);
    // A reply joins the thread: the thread is updated, the inbox and the quota too.
    const reply = await deliver(app, mbx, { subject: 'Re: typed', text: 'r', inReplyTo: '<typed@example.org>' }, { receivedAt: tick() });
    const after = (await get(`/api/v1/mailbox/changes?types=messages,threads,folders,quotas&${Object.entries(t).map(([k, v]) => `${k}_since_state=${(v as { new_state: string }).new_state}`).join('&')}`)).body.data.types;
    assert.deepEqual(after.messages.created, [reply]);
    assert.deepEqual([after.threads.created, after.threads.updated], [[], [msg.thread_id]]);
    assert.deepEqual(after.folders.updated, [msg.folder_ids[0]]);
    assert.deepEqual(after.quotas.updated, [quota.id]);
  });

  test('per-resource endpoints: folders, quotas', async () => {
    const f0 = (await get('/api/v1/mailbox/folders/changes')).body.data.new_state;
    const q0 = (await get('/api/v1/mailbox/quotas/changes')).body.data.new_state;
    const folder = (await app.api('POST', '/api/v1/mailbox/folders', { token: mbx.key, body: { name: 'Short-lived' } })).body.data;
    const f1 = (await get(`/api/v1/mailbox/folders/changes?since_state=${f0}`)).body.data;
    assert.deepEqual(f1.created, [folder.id]);
    await app.api('DELETE', `/api/v1/mailbox/folders/${folder.id}`, { token: mbx.key });
    assert.deepEqual((await get(`/api/v1/mailbox/folders/changes?since_state=${f1.new_state}`)).body.data.destroyed, [folder.id]);
    // created and destroyed since f0: omitted
    const both = (await get(`/api/v1/mailbox/folders/changes?since_state=${f0}`)).body.data;
    assert.deepEqual([both.created, both.destroyed], [[], []]);
    await deliver(app, mbx, { subject: 'quota', text: 'q' }, { receivedAt: tick() });
    const quota = (await get('/api/v1/mailbox/quotas')).body.data[0];
    assert.deepEqual((await get(`/api/v1/mailbox/quotas/changes?since_state=${q0}`)).body.data.updated, [quota.id]);
  });

  test('invalid states are 400 invalid_parameter', async () => {
    for (const url of [
      '/api/v1/mailbox/changes?since_state=garbage',
      '/api/v1/mailbox/changes?since_state=szzzzzzzz',
      '/api/v1/mailbox/folders/changes?since_state=s-1',
      '/api/v1/mailbox/changes?types=folders&folders_since_state=x1',
      '/api/v1/mailbox/messages/query-changes?since_query_state=nope',
      '/api/v1/mailbox/folders/query-changes?since_query_state=s1',
      '/api/v1/mailbox/messages/query-changes?thread_id=thr_x',
    ]) {
      const r = await get(url);
      assert.equal(r.status, 400, url);
      assert.equal(r.body.error.code, 'invalid_parameter', url);
    }
    // a resource state is not a query state, and a query state is bound to its filter and sort
    const state = (await get('/api/v1/mailbox/changes')).body.data.new_state;
    assert.equal((await get(`/api/v1/mailbox/messages/query-changes?since_query_state=${state}`)).status, 400);
    const qs = (await get('/api/v1/mailbox/messages/query-changes?is_unread=true')).body.data.new_query_state;
    assert.equal((await get(`/api/v1/mailbox/messages/query-changes?since_query_state=${qs}&is_unread=true`)).status, 200);
    assert.equal((await get(`/api/v1/mailbox/messages/query-changes?since_query_state=${qs}`)).status, 400);
    assert.equal((await get(`/api/v1/mailbox/messages/query-changes?since_query_state=${qs}&is_unread=true&sort_direction=asc`)).status, 400);
  });

  test('message query-changes: added with index, removed, total; the client ends with the server list', async () => {
    for (const [query, limit] of [
      ['', 50],
      ['&folder_id=inbox', 2],
      ['&is_unread=true&sort_by=subject&sort_direction=asc', 1],
      ['&q=report&sort_by=received_at&sort_direction=asc', 3],
    ] as const) {
      const start = await get(`/api/v1/mailbox/messages/query-changes?calculate_total=true${query}`);
      assert.equal(start.status, 200);
      assert.equal(start.body.data.old_query_state, null);
      const list0 = await allIds(query);
      assert.equal(start.body.data.total, list0.length);
      const fresh: string[] = [];
      for (let i = 0; i < 4; i++) fresh.push(await deliver(app, mbx, { subject: `report ${String.fromCharCode(100 - i)} ${query}`, text: 'quarterly report' }, { receivedAt: tick() }));
      await app.api('POST', '/api/v1/mailbox/messages:batch-update', { token: mbx.key, body: { ids: [fresh[0], list0[0] ?? fresh[1]], seen: true } });
      await app.api('DELETE', `/api/v1/mailbox/messages/${fresh[1]}`, { token: mbx.key });
      await app.api('DELETE', `/api/v1/mailbox/messages/${fresh[2]}?permanent=true`, { token: mbx.key });
      const { list, state } = await followQuery(list0, start.body.data.new_query_state, query, limit);
      assert.deepEqual(list, await allIds(query), `query ${query}`);
      const tail = await get(`/api/v1/mailbox/messages/query-changes?since_query_state=${state}&calculate_total=true${query}`);
      assert.deepEqual([tail.body.data.removed, tail.body.data.added, tail.body.data.has_more, tail.body.data.total], [[], [], false, list.length]);
    }
  });

  test('message query-changes pages stay right when mail arrives between pages', async () => {
    const query = '&sort_by=received_at&sort_direction=desc';
    const start = (await get(`/api/v1/mailbox/messages/query-changes?${query}`)).body.data.new_query_state;
    const list0 = await allIds(query);
    for (let i = 0; i < 6; i++) await deliver(app, mbx, { subject: `burst ${i}`, text: 'b' }, { receivedAt: tick() });
    const p1 = (await get(`/api/v1/mailbox/messages/query-changes?since_query_state=${start}&limit=2${query}`)).body.data;
    assert.equal(p1.has_more, true);
    let list = applyQueryChanges(list0, p1);
    // more mail, a flag change and a delete between the pages
    const late = await deliver(app, mbx, { subject: 'late', text: 'l' }, { receivedAt: tick() });
    await app.api('PATCH', `/api/v1/mailbox/messages/${list0[list0.length - 1]}`, { token: mbx.key, body: { seen: true } });
    await app.api('DELETE', `/api/v1/mailbox/messages/${list0[1]}?permanent=true`, { token: mbx.key });
    const rest = await followQuery(list, p1.new_query_state, query, 2);
    list = rest.list;
    assert.deepEqual(list, await allIds(query));
    assert.ok(list.includes(late));
  });

  test('up_to_id bounds the added items of an immutable-filter query', async () => {
    const query = '&q=window';
    for (let i = 0; i < 3; i++) await deliver(app, mbx, { subject: `window ${i}`, text: 'w' }, { receivedAt: tick() });
    const start = (await get(`/api/v1/mailbox/messages/query-changes?${query}`)).body.data.new_query_state;
    const list0 = await allIds(query);
    const newest = await deliver(app, mbx, { subject: 'window newest', text: 'w' }, { receivedAt: tick() });
    const oldest = await deliver(app, mbx, { subject: 'window oldest', text: 'w' }, { receivedAt: T0 - day });
    const r = (await get(`/api/v1/mailbox/messages/query-changes?since_query_state=${start}&up_to_id=${list0[0]}${query}`)).body.data;
    assert.deepEqual(r.added, [{ id: newest, index: 0 }]);
    assert.ok(!r.added.some((a: { id: string }) => a.id === oldest));
    const full = (await get(`/api/v1/mailbox/messages/query-changes?since_query_state=${start}${query}`)).body.data;
    assert.deepEqual(applyQueryChanges(list0, full), await allIds(query));
  });

  test('folder query-changes follow creates, reorders and deletes', async () => {
    const folderIds = async () => (await get('/api/v1/mailbox/folders?limit=100')).body.data.map((f: { id: string }) => f.id) as string[];
    const start = (await get('/api/v1/mailbox/folders/query-changes')).body.data;
    assert.equal(start.old_query_state, null);
    let list = await folderIds();
    const x = (await app.api('POST', '/api/v1/mailbox/folders', { token: mbx.key, body: { name: 'X', sort_order: 50 } })).body.data;
    const y = (await app.api('POST', '/api/v1/mailbox/folders', { token: mbx.key, body: { name: 'Y', sort_order: 0 } })).body.data;
    await app.api('POST', '/api/v1/mailbox/folders', { token: mbx.key, body: { name: 'Z' } });
    await app.api('PATCH', `/api/v1/mailbox/folders/${x.id}`, { token: mbx.key, body: { sort_order: 3 } });
    await app.api('DELETE', `/api/v1/mailbox/folders/${y.id}`, { token: mbx.key });
    let state = start.new_query_state;
    for (let i = 0; i < 100; i++) {
      const r = await get(`/api/v1/mailbox/folders/query-changes?since_query_state=${state}&limit=1`);
      assert.equal(r.status, 200, r.text);
      list = applyQueryChanges(list, r.body.data);
      state = r.body.data.new_query_state;
      if (!r.body.data.has_more) break;
    }
    assert.deepEqual(list, await folderIds());
  });

  test('retention drops old changes without moving any state back; older states get sync_required', async () => {
    const before = (await get('/api/v1/mailbox/session')).body.data.states;
    const oldMsgState = (await get('/api/v1/mailbox/changes')).body.data.new_state;
    const oldQuery = (await get('/api/v1/mailbox/messages/query-changes')).body.data.new_query_state;
    const m = await deliver(app, mbx, { subject: 'before purge', text: 'x' }, { receivedAt: tick() });
    await app.api('PATCH', `/api/v1/mailbox/messages/${m}`, { token: mbx.key, body: { seen: true } });
    const mid = (await get('/api/v1/mailbox/session')).body.data.states;
    tick(31 * day);
    const deleted = await app.services.sync.purgeOldChanges();
    assert.ok(deleted > 0);
    // no state moved: every type keeps its newest change
    assert.deepEqual((await get('/api/v1/mailbox/session')).body.data.states, mid);
    const current = await get(`/api/v1/mailbox/changes?since_state=${mid.messages}`);
    assert.deepEqual(current.body.data, { old_state: mid.messages, new_state: mid.messages, has_more: false, created: [], updated: [], destroyed: [] });
    const old = await get(`/api/v1/mailbox/changes?since_state=${oldMsgState}`);
    assert.equal(old.status, 200);
    assert.deepEqual(old.body.data, { old_state: oldMsgState, new_state: mid.messages, has_more: false, created: [], updated: [], destroyed: [], sync_required: true });
    const typed = await get(`/api/v1/mailbox/changes?types=folders,quotas&folders_since_state=${before.folders}&quotas_since_state=${mid.quotas}`);
    assert.equal(typed.body.data.types.folders.sync_required, true);
    assert.equal(typed.body.data.types.quotas.sync_required, undefined);
    assert.equal((await get(`/api/v1/mailbox/messages/query-changes?since_query_state=${oldQuery}`)).status, 400);
    // after the purge the log goes on from the kept newest rows
    await app.api('PATCH', `/api/v1/mailbox/messages/${m}`, { token: mbx.key, body: { flagged: true } });
    const next = (await get(`/api/v1/mailbox/changes?since_state=${mid.messages}`)).body.data;
    assert.deepEqual(next.updated, [m]);
    // a second pass drops the rows the new change superseded, and still no state moves
    const states = (await get('/api/v1/mailbox/session')).body.data.states;
    await app.services.sync.purgeOldChanges();
    assert.equal(await app.services.sync.purgeOldChanges(), 0);
    assert.deepEqual((await get('/api/v1/mailbox/session')).body.data.states, states);
    assert.equal((await get(`/api/v1/mailbox/changes?since_state=${next.new_state}`)).body.data.sync_required, undefined);
    // mid.messages is exactly the horizon now: everything after it is kept, so it still answers
    assert.deepEqual((await get(`/api/v1/mailbox/changes?since_state=${mid.messages}`)).body.data.updated, [m]);
  });

  test('the maintenance worker runs the retention pass', async () => {
    const old = (await get('/api/v1/mailbox/changes')).body.data.new_state;
    const m = await deliver(app, mbx, { subject: 'maintenance', text: 'x' }, { receivedAt: tick() });
    await app.api('PATCH', `/api/v1/mailbox/messages/${m}`, { token: mbx.key, body: { seen: true } });
    tick(40 * day);
    await new MaintenanceWorker(app.services).pass();
    assert.equal((await get(`/api/v1/mailbox/changes?since_state=${old}`)).body.data.sync_required, true);
  });
});
