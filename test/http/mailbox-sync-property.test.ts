// Property: random sequences of ingest, flag and keyword changes, moves to Trash and permanent
// deletes through the API, interleaved with single pages of /changes and query-changes (so
// pages continue across concurrent writes). A client that only follows /changes (plus batch-get)
// and query-changes for one filter ends with exactly the server's messages and list. The same for
// folders (create, reorder, rename, delete, count changes) with folder /changes and query-changes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { describeEachBackend } from '../helpers/backends.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { createMailbox, deliver, type TestMailbox } from '../helpers/mail.ts';

const T0 = Date.parse('2026-11-15T00:00:00Z');
const RUNS = Number(process.env.MAILMUX_PROPERTY_RUNS ?? 25);

type Op =
  | { kind: 'deliver'; minute: number; subject: number; spam: boolean }
  | { kind: 'flag'; pick: number; seen: boolean | null; flagged: boolean | null; keyword: string | null; batch: boolean }
  | { kind: 'trash'; pick: number }
  | { kind: 'destroy'; pick: number }
  | { kind: 'sync'; limit: number }
  | { kind: 'query'; limit: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('deliver' as const), minute: fc.integer({ min: 0, max: 30 }), subject: fc.integer({ min: 0, max: 5 }), spam: fc.boolean() }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('flag' as const),
      pick: fc.nat(),
      seen: fc.option(fc.boolean()),
      flagged: fc.option(fc.boolean()),
      keyword: fc.option(fc.constantFrom('todo', 'done')),
      batch: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('trash' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('destroy' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('sync' as const), limit: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('query' as const), limit: fc.integer({ min: 1, max: 3 }) }) },
);

const QUERIES = [
  '',
  '&folder_id=inbox',
  '&is_unread=true&sort_by=subject&sort_direction=asc',
  '&keyword=todo&sort_by=received_at&sort_direction=asc',
  '&not_keyword=%24flagged&sort_by=size_bytes',
  '&q=topic&sort_by=from',
];

interface View {
  keywords: string[];
  folder_ids: string[];
}

describeEachBackend('mailbox sync property', (backend) => {
  let app: TestApp;
  let run = 0;

  before(async () => {
    // Every run (and every shrink step) takes a fresh mailbox.
    app = await startTestApp(backend, { MAILMUX_MAX_MAILBOXES_PER_TEAM: '1000000' });
  });
  after(async () => app.close());

  test('a client following /changes and query-changes converges to the server state', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 10, maxLength: 60, size: 'max' }), fc.constantFrom(...QUERIES), async (ops, query) => {
        const mbx: TestMailbox = await createMailbox(app, `prop${run++}`);
        const call = (method: string, url: string, body?: unknown) => app.api(method, url, { token: mbx.key, ...(body !== undefined ? { body } : {}) });
        const get = async (url: string) => {
          const r = await call('GET', url);
          assert.equal(r.status, 200, `${url}: ${r.text}`);
          return r.body.data;
        };

        // The client: a message map kept by /changes, a list kept by query-changes.
        const client = new Map<string, View>();
        let state: string = (await get('/api/v1/mailbox/changes')).new_state;
        let list: string[] = [];
        let queryState: string = (await get(`/api/v1/mailbox/messages/query-changes?${query}`)).new_query_state;
        const syncPage = async (limit: number): Promise<boolean> => {
          const c = await get(`/api/v1/mailbox/changes?since_state=${state}&limit=${limit}`);
          assert.equal(c.sync_required, undefined);
          assert.ok(c.created.length + c.updated.length + c.destroyed.length <= limit);
          const fetch = [...c.created, ...c.updated];
          if (fetch.length > 0) {
            const r = await call('POST', '/api/v1/mailbox/messages:batch-get', { ids: fetch });
            assert.equal(r.status, 200);
            for (const m of r.body.data.messages) client.set(m.message.id, { keywords: [...m.message.keywords].sort(), folder_ids: [...m.message.folder_ids].sort() });
            // Gone already: a later page reports it destroyed.
            for (const id of r.body.data.not_found) client.delete(id);
          }
          for (const id of c.destroyed) client.delete(id);
          state = c.new_state;
          return c.has_more;
        };
        const queryPage = async (limit: number): Promise<boolean> => {
          const q = await get(`/api/v1/mailbox/messages/query-changes?since_query_state=${queryState}&limit=${limit}${query}`);
          assert.ok(q.added.length <= limit);
          const removed = new Set(q.removed);
          list = list.filter((id) => !removed.has(id));
          for (const a of q.added) list.splice(a.index, 0, a.id);
          queryState = q.new_query_state;
          return q.has_more;
        };

        // The server side of the model: which messages exist and which are in Trash.
        const live: string[] = [];
        const inTrash = new Set<string>();
        const drop = (id: string) => {
          live.splice(live.indexOf(id), 1);
          inTrash.delete(id);
        };
        for (const op of ops) {
          switch (op.kind) {
            case 'deliver': {
              const id = await deliver(
                app,
                mbx,
                { from: `Sender ${op.subject} <s${op.subject}@example.org>`, subject: `topic ${op.subject}`, text: 'x'.repeat(op.subject * 7 + 1) },
                { receivedAt: T0 + op.minute * 60_000, spam: op.spam },
              );
              live.push(id);
              break;
            }
            case 'flag': {
              if (live.length === 0) break;
              const id = live[op.pick % live.length]!;
              const body: Record<string, unknown> = {};
              if (op.seen !== null) body.seen = op.seen;
              if (op.flagged !== null) body.flagged = op.flagged;
              if (op.keyword !== null) body.keywords = { [op.keyword]: op.seen ?? true };
              const r = op.batch
                ? await call('POST', '/api/v1/mailbox/messages:batch-update', { ids: [id, live[(op.pick + 1) % live.length]!], ...body })
                : await call('PATCH', `/api/v1/mailbox/messages/${id}`, body);
              assert.equal(r.status, 200, r.text);
              break;
            }
            case 'trash': {
              if (live.length === 0) break;
              const id = live[op.pick % live.length]!;
              assert.equal((await call('DELETE', `/api/v1/mailbox/messages/${id}`)).status, 200);
              // Deleting from Trash destroys (spec-deviations.ts).
              if (inTrash.has(id)) drop(id);
              else inTrash.add(id);
              break;
            }
            case 'destroy': {
              if (live.length === 0) break;
              const id = live[op.pick % live.length]!;
              assert.equal((await call('DELETE', `/api/v1/mailbox/messages/${id}?permanent=true`)).status, 200);
              drop(id);
              break;
            }
            case 'sync':
              await syncPage(op.limit);
              break;
            case 'query':
              await queryPage(op.limit);
              break;
          }
        }
        // Catch up, then compare with what the server holds.
        for (let i = 0; (await syncPage(3)) && i < 1000; i++);
        for (let i = 0; (await queryPage(3)) && i < 1000; i++);

        const server = new Map<string, View>();
        const serverList: string[] = [];
        for (const [q, into] of [['', null], [query, serverList]] as const) {
          let cursor = '';
          for (;;) {
            const r = await call('GET', `/api/v1/mailbox/messages?limit=100${q}${cursor ? `&cursor=${cursor}` : ''}`);
            for (const m of r.body.data) {
              if (into) into.push(m.id);
              else server.set(m.id, { keywords: [...m.keywords].sort(), folder_ids: [...m.folder_ids].sort() });
            }
            if (!r.body.pagination.has_more) break;
            cursor = r.body.pagination.next_cursor;
          }
        }
        assert.deepEqual(new Set(server.keys()), new Set(live), 'the model agrees with the server');
        assert.deepEqual(Object.fromEntries([...client].sort()), Object.fromEntries([...server].sort()), 'the /changes client matches the server');
        assert.deepEqual(list, serverList, `the query-changes client matches the server list (${query})`);
        assert.equal(state, (await get('/api/v1/mailbox/session')).states.messages);
      }),
      { numRuns: RUNS },
    );
  });

  test('a client following folder /changes and folder query-changes converges to the server folders', async () => {
    type FolderOp =
      | { kind: 'create'; order: number | null }
      | { kind: 'reorder'; pick: number; order: number }
      | { kind: 'rename'; pick: number }
      | { kind: 'delete'; pick: number }
      | { kind: 'deliver' }
      | { kind: 'sync'; limit: number }
      | { kind: 'query'; limit: number };
    const folderOp: fc.Arbitrary<FolderOp> = fc.oneof(
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('create' as const), order: fc.option(fc.integer({ min: 0, max: 8 })) }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('reorder' as const), pick: fc.nat(), order: fc.integer({ min: 0, max: 8 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('rename' as const), pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('deliver' as const) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('sync' as const), limit: fc.integer({ min: 1, max: 3 }) }) },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('query' as const), limit: fc.integer({ min: 1, max: 3 }) }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(folderOp, { minLength: 5, maxLength: 40, size: 'max' }), async (ops) => {
        const mbx: TestMailbox = await createMailbox(app, `fprop${run++}`);
        const call = (method: string, url: string, body?: unknown) => app.api(method, url, { token: mbx.key, ...(body !== undefined ? { body } : {}) });
        const get = async (url: string) => {
          const r = await call('GET', url);
          assert.equal(r.status, 200, `${url}: ${r.text}`);
          return r.body.data;
        };
        const serverFolders = async (): Promise<Record<string, unknown>[]> => get('/api/v1/mailbox/folders?limit=100');
        // Baseline: the list and both states, read before any change.
        const client = new Map<string, unknown>((await serverFolders()).map((f) => [f.id as string, f]));
        let list = [...client.keys()];
        let state: string = (await get('/api/v1/mailbox/folders/changes')).new_state;
        let queryState: string = (await get('/api/v1/mailbox/folders/query-changes')).new_query_state;
        const syncPage = async (limit: number): Promise<boolean> => {
          const c = await get(`/api/v1/mailbox/folders/changes?since_state=${state}&limit=${limit}`);
          for (const id of [...c.created, ...c.updated]) {
            const r = await call('GET', `/api/v1/mailbox/folders/${id}`);
            if (r.status === 404) client.delete(id);
            else client.set(id, r.body.data);
          }
          for (const id of c.destroyed) client.delete(id);
          state = c.new_state;
          return c.has_more;
        };
        const queryPage = async (limit: number): Promise<boolean> => {
          const q = await get(`/api/v1/mailbox/folders/query-changes?since_query_state=${queryState}&limit=${limit}`);
          assert.ok(q.added.length <= limit);
          const removed = new Set(q.removed);
          list = list.filter((id) => !removed.has(id));
          for (const a of q.added) list.splice(a.index, 0, a.id);
          queryState = q.new_query_state;
          return q.has_more;
        };
        const custom: string[] = [];
        let n = 0;
        for (const op of ops) {
          const pick = (i: number) => custom[i % custom.length]!;
          switch (op.kind) {
            case 'create': {
              const r = await call('POST', '/api/v1/mailbox/folders', { name: `F${n++}`, ...(op.order !== null ? { sort_order: op.order } : {}) });
              assert.equal(r.status, 201, r.text);
              custom.push(r.body.data.id);
              break;
            }
            case 'reorder':
              if (custom.length > 0) assert.equal((await call('PATCH', `/api/v1/mailbox/folders/${pick(op.pick)}`, { sort_order: op.order })).status, 200);
              break;
            case 'rename':
              if (custom.length > 0) assert.equal((await call('PATCH', `/api/v1/mailbox/folders/${pick(op.pick)}`, { name: `R${n++}` })).status, 200);
              break;
            case 'delete':
              if (custom.length > 0) {
                const id = pick(op.pick);
                assert.equal((await call('DELETE', `/api/v1/mailbox/folders/${id}`)).status, 200);
                custom.splice(custom.indexOf(id), 1);
              }
              break;
            case 'deliver':
              await deliver(app, mbx, { subject: 'folder counts', text: 'x' });
              break;
            case 'sync':
              await syncPage(op.limit);
              break;
            case 'query':
              await queryPage(op.limit);
              break;
          }
        }
        for (let i = 0; (await syncPage(2)) && i < 1000; i++);
        for (let i = 0; (await queryPage(2)) && i < 1000; i++);
        const server = await serverFolders();
        assert.deepEqual(Object.fromEntries([...client].sort()), Object.fromEntries(server.map((f) => [f.id as string, f]).sort()), 'the /changes client matches the server');
        assert.deepEqual(list, server.map((f) => f.id), 'the query-changes client has the server order');
      }),
      { numRuns: RUNS },
    );
  });
});
