// The store conformance suite: the same promises checked on every backend (SQLite always,
// PostgreSQL when MAILMUX_TEST_DATABASE_URL is set). Migrations, the content-addressed blob store,
// the change log written in the same transaction as the data, idempotency claims and unique
// violations. The test talks to the database directly (better-sqlite3, pg) only to look, never to
// stand in for the store.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import pg from 'pg';
import { isUniqueViolation, openStore, type DomainRow, type IdempotencyRow, type MailboxRow, type Store } from '../../src/store/index.ts';
import { iso } from '../../src/core/clock.ts';
import { newId } from '../../src/core/ids.ts';
import { describeEachBackend, type Backend } from '../helpers/backends.ts';

type Provisioned = Awaited<ReturnType<Backend['provision']>>;

function open(db: Provisioned): Promise<Store> {
  return openStore({ databaseUrl: db.databaseUrl, dataDir: db.dataDir, ...(db.pgSchema ? { pgSchema: db.pgSchema } : {}) });
}

/** Reads rows straight from the database behind a provisioned store, bypassing the store. */
async function look(db: Provisioned, query: string): Promise<Record<string, unknown>[]> {
  if (db.databaseUrl === null) {
    const file = new SqliteDatabase(join(db.dataDir, 'mailmux.sqlite'), { readonly: true });
    try {
      return file.prepare(query).all() as Record<string, unknown>[];
    } finally {
      file.close();
    }
  }
  const client = new pg.Client({ connectionString: db.databaseUrl, options: `-c search_path=${db.pgSchema}` });
  await client.connect();
  try {
    return (await client.query(query)).rows as Record<string, unknown>[];
  } finally {
    await client.end();
  }
}

const now = (): string => iso(Date.now());

function domainRow(teamId: string | null, domain: string): DomainRow {
  const t = now();
  return {
    id: newId('mdom'),
    team_id: teamId,
    domain,
    mode: 'send_receive',
    is_default: 0,
    verification_status: 'pending',
    verified_at: null,
    verify_token: 'token',
    dkim_selector: 'mm20250101',
    dkim_private_key: 'not a real key',
    dkim_public_key: 'not a real key',
    dkim_status: 'not_started',
    mail_from_status: 'not_started',
    identity_status: 'Pending',
    checked_at: null,
    fail_streak: 0,
    deleting: 0,
    created_at: t,
    updated_at: t,
  };
}

function mailboxRow(teamId: string, domainId: string, email: string): MailboxRow {
  const t = now();
  return {
    id: newId('mbx'),
    team_id: teamId,
    domain_id: domainId,
    email,
    display_name: null,
    quota_bytes: 1073741824,
    used_bytes: 0,
    send_scope: '{"type":"all"}',
    status: 'active',
    cleanup_pending: 0,
    created_at: t,
    updated_at: t,
    deleted_at: null,
  };
}

function idemRow(scope: string, key: string, createdAt: number, ttlMs: number, fingerprint = 'fp-1'): IdempotencyRow {
  return { scope, key, fingerprint, state: 'in_flight', status_code: null, response: null, created_at: iso(createdAt), expires_at: iso(createdAt + ttlMs) };
}

async function newTeam(store: Store): Promise<string> {
  const id = newId('team');
  await store.teams.insert({ id, name: 'conformance', created_at: now() });
  return id;
}

async function lastChangeId(store: Store): Promise<number> {
  let last = 0;
  for (;;) {
    const page = await store.changes.list({ afterId: last, limit: 500 });
    if (page.length === 0) return last;
    last = page[page.length - 1]!.change_id;
  }
}

async function caught(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  assert.fail('expected the operation to throw');
}

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

describeEachBackend('store conformance', (backend) => {
  let db: Provisioned;
  let store: Store;
  before(async () => {
    db = await backend.provision();
    store = await open(db);
  });
  after(async () => {
    await store.close();
    await db.drop();
  });

  describe('migrations', () => {
    test('run on open: every migration is recorded once and the tables exist', async () => {
      const rows = await look(db, 'select name, timestamp from kysely_migration order by name');
      const names = rows.map((r) => String(r.name));
      assert.ok(names.includes('001-foundation'), names.join(','));
      assert.equal(new Set(names).size, names.length);
      assert.equal(store.dialect, backend.name);
      assert.equal(await store.teams.count(), 0);
    });

    test('a second open of the same database is a no-op that keeps the data', async () => {
      const teamId = await newTeam(store);
      const before = await look(db, 'select name, timestamp from kysely_migration order by name');
      // While the first store is still open, as a second process would.
      const second = await open(db);
      try {
        assert.equal((await second.teams.get(teamId))?.id, teamId);
        assert.deepEqual(await look(db, 'select name, timestamp from kysely_migration order by name'), before);
      } finally {
        await second.close();
      }
      // And once more after it closed: the first store still works and sees the same data.
      const third = await open(db);
      try {
        assert.equal((await third.teams.get(teamId))?.name, 'conformance');
      } finally {
        await third.close();
      }
      assert.equal((await store.teams.get(teamId))?.id, teamId);
    });

    if (backend.name === 'postgres') {
      test('another schema in the same database gets its own tables and migrations', async () => {
        const other = await backend.provision();
        try {
          const s = await open(other);
          try {
            assert.equal(await s.teams.count(), 0);
            const names = (await look(other, 'select name from kysely_migration order by name')).map((r) => String(r.name));
            assert.deepEqual(names, (await look(db, 'select name from kysely_migration order by name')).map((r) => String(r.name)));
          } finally {
            await s.close();
          }
        } finally {
          await other.drop();
        }
      });

      test('a first open succeeds while other schemas of the database are created and dropped', async () => {
        // Other tenants of a shared database (or parallel test suites) come and go: start-up must
        // look only at its own schema, never resolve someone else's tables by name.
        const { default: pg } = await import('pg');
        const churn = new pg.Client({ connectionString: process.env.MAILMUX_TEST_DATABASE_URL });
        await churn.connect();
        let stop = false;
        const churning = (async () => {
          for (let i = 0; !stop; i++) {
            const name = `churn_${process.pid}_${i}`;
            const tables = Array.from({ length: 150 }, (_, t) => `create table ${name}.t${t} (id serial primary key, a text, b text, c text);`).join('');
            await churn.query(`create schema ${name}; ${tables}`);
            await churn.query(`drop schema ${name} cascade`);
          }
        })();
        try {
          for (let i = 0; i < 6; i++) {
            const fresh = await backend.provision();
            try {
              const s = await open(fresh);
              assert.equal(await s.teams.count(), 0);
              await s.close();
            } finally {
              await fresh.drop();
            }
          }
        } finally {
          stop = true;
          await churning;
          await churn.end();
        }
      });

      test('two first opens of one empty database at once both succeed', async () => {
        const fresh = await backend.provision();
        try {
          const [a, b] = await Promise.all([open(fresh), open(fresh)]);
          await a.teams.insert({ id: newId('team'), name: 'a', created_at: now() });
          assert.equal(await b.teams.count(), 1);
          await Promise.all([a.close(), b.close()]);
        } finally {
          await fresh.drop();
        }
      });
    }
  });

  if (backend.name === 'sqlite') {
    test('sqlite: WAL journal, synchronous NORMAL with the driver flushing the WAL, checkpoints off the connection', async () => {
      const fresh = await backend.provision();
      // Capture the connection the store opens (only to read its settings back).
      const seen = new Set<SqliteDatabase.Database>();
      const original = SqliteDatabase.prototype.pragma;
      SqliteDatabase.prototype.pragma = function (this: SqliteDatabase.Database, ...args: Parameters<typeof original>) {
        seen.add(this);
        return original.apply(this, args);
      };
      let s: Store;
      try {
        s = await open(fresh);
      } finally {
        SqliteDatabase.prototype.pragma = original;
      }
      try {
        assert.equal(seen.size, 1);
        const [conn] = [...seen];
        assert.equal(conn!.pragma('journal_mode', { simple: true }), 'wal');
        // NORMAL (1): commits write the WAL, and the driver fdatasyncs it before a commit resolves.
        assert.equal(conn!.pragma('synchronous', { simple: true }), 1);
        assert.equal(conn!.pragma('wal_autocheckpoint', { simple: true }), 0);
        assert.equal(conn!.pragma('foreign_keys', { simple: true }), 1);
        assert.ok(Number(conn!.pragma('busy_timeout', { simple: true })) > 0);
        // WAL is a property of the file: any other connection sees it too.
        const direct = new SqliteDatabase(join(fresh.dataDir, 'mailmux.sqlite'), { readonly: true });
        try {
          assert.equal(direct.pragma('journal_mode', { simple: true }), 'wal');
        } finally {
          direct.close();
        }
      } finally {
        await s.close();
        await fresh.drop();
      }
    });
  }

  describe('blob store', () => {
    test('put, get, has, delete', async () => {
      const data = Buffer.from(`hello ${backend.name} ${randomBytes(8).toString('hex')}\r\n`);
      const ref = await store.blobs.put(data);
      assert.deepEqual(ref, { sha256: sha256(data), size: data.byteLength });
      assert.equal(await store.blobs.has(ref.sha256), true);
      assert.deepEqual(await store.blobs.get(ref.sha256), data);
      await store.blobs.delete(ref.sha256);
      assert.equal(await store.blobs.has(ref.sha256), false);
      assert.equal(await store.blobs.get(ref.sha256), null);
      await store.blobs.delete(ref.sha256); // deleting an absent blob is fine
    });

    test('content addressing: the same bytes have one address, and putting them twice is fine', async () => {
      const bytes = randomBytes(1000);
      const a = await store.blobs.put(bytes);
      const b = await store.blobs.put(Buffer.from(bytes));
      assert.equal(a.sha256, b.sha256);
      assert.equal(a.sha256, sha256(bytes));
      const other = await store.blobs.put(Buffer.concat([bytes, Buffer.from('!')]));
      assert.notEqual(other.sha256, a.sha256);
      assert.deepEqual(await store.blobs.get(a.sha256), bytes);
      // Concurrent puts of the same bytes both succeed.
      const fresh = randomBytes(4096);
      const refs = await Promise.all([store.blobs.put(fresh), store.blobs.put(fresh), store.blobs.put(fresh)]);
      assert.deepEqual(new Set(refs.map((r) => r.sha256)), new Set([sha256(fresh)]));
      assert.deepEqual(await store.blobs.get(sha256(fresh)), fresh);
    });

    test('a view into a larger buffer stores only its own bytes; the empty blob works', async () => {
      const big = randomBytes(300);
      const view = new Uint8Array(big.buffer, big.byteOffset + 100, 50);
      const ref = await store.blobs.put(view);
      assert.deepEqual(ref, { sha256: sha256(view), size: 50 });
      assert.deepEqual(await store.blobs.get(ref.sha256), Buffer.from(view));
      const empty = await store.blobs.put(new Uint8Array(0));
      assert.deepEqual(empty, { sha256: sha256(new Uint8Array(0)), size: 0 });
      assert.deepEqual(await store.blobs.get(empty.sha256), Buffer.alloc(0));
    });

    test('an unknown digest reads as absent', async () => {
      const unknown = sha256(randomBytes(32));
      assert.equal(await store.blobs.get(unknown), null);
      assert.equal(await store.blobs.has(unknown), false);
    });

    test('an address that is not a lowercase sha256 hex digest is refused', async () => {
      const bad = [
        '../../etc/passwd',
        `../${'a'.repeat(61)}`,
        `${'a'.repeat(64)}/../../x`,
        'a'.repeat(63),
        'a'.repeat(65),
        'A'.repeat(64),
        'g'.repeat(64),
        '',
        `${'a'.repeat(63)}\n`,
      ];
      for (const digest of bad) {
        await assert.rejects(store.blobs.get(digest), /sha256/, `get(${JSON.stringify(digest)})`);
        await assert.rejects(store.blobs.has(digest), /sha256/, `has(${JSON.stringify(digest)})`);
        await assert.rejects(store.blobs.delete(digest), /sha256/, `delete(${JSON.stringify(digest)})`);
      }
    });

    test('a 5 MB blob round-trips', async () => {
      const data = randomBytes(5 * 1024 * 1024);
      const ref = await store.blobs.put(data);
      assert.equal(ref.size, data.byteLength);
      const back = await store.blobs.get(ref.sha256);
      assert.ok(back);
      assert.equal(back.byteLength, data.byteLength);
      assert.ok(back.equals(data));
    });

    test('staged blobs: kept when the transaction that refers to them commits; a small SQLite blob goes with a rollback', async () => {
      const small = randomBytes(2000);
      const large = randomBytes(300 * 1024);
      const staged = [await store.blobs.stage(small), await store.blobs.stage(large)];
      await store.blobs.sync(staged);
      await store.transaction(async (tx) => tx.blobRows.insert(staged));
      await store.blobs.release(staged);
      assert.deepEqual(await store.blobs.get(sha256(small)), small);
      assert.ok((await store.blobs.get(sha256(large)))?.equals(large));

      const lost = randomBytes(1500);
      const again = [await store.blobs.stage(lost)];
      await store.blobs.sync(again);
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.blobRows.insert(again);
          throw new Error('rolled back');
        }),
        /rolled back/,
      );
      await store.blobs.release(again);
      // SQLite keeps a small blob in the transaction, so it went with the rollback. PostgreSQL's
      // sync() stored it before the transaction: it stays, unreferenced, like a blob file would.
      assert.equal(await store.blobs.has(sha256(lost)), backend.name === 'postgres');
    });

    test('a blob staged by a delivery in flight is not deleted under it', async () => {
      const data = randomBytes(800);
      await store.blobs.put(data);
      const staged = [await store.blobs.stage(data)];
      await store.blobs.delete(sha256(data)); // e.g. the last message using these bytes was deleted meanwhile
      await store.transaction(async (tx) => tx.blobRows.insert(staged));
      await store.blobs.release(staged);
      assert.deepEqual(await store.blobs.get(sha256(data)), data);
      await store.blobs.delete(sha256(data));
      assert.equal(await store.blobs.has(sha256(data)), false);
    });

    if (backend.name === 'sqlite') {
      test('sqlite: small blobs live in the database, large ones are files named by their digest with no temp file left behind', async () => {
        const small = await store.blobs.put(randomBytes(64));
        assert.equal((await look(db, `select size from blobs where sha256 = '${small.sha256}'`)).length, 1);
        const smallDir = join(db.dataDir, 'blobs', small.sha256.slice(0, 2), small.sha256.slice(2, 4));
        assert.equal(existsSync(join(smallDir, small.sha256)), false);

        const large = await store.blobs.put(randomBytes(200 * 1024));
        assert.equal((await look(db, `select size from blobs where sha256 = '${large.sha256}'`)).length, 0);
        const dir = join(db.dataDir, 'blobs', large.sha256.slice(0, 2), large.sha256.slice(2, 4));
        const files = readdirSync(dir);
        assert.ok(files.includes(large.sha256), files.join(','));
        assert.deepEqual(files.filter((f) => f.startsWith('.tmp-')), []);
      });

      test('sqlite: a small blob stored as a file (a data folder from before the table) is still read and deleted', async () => {
        const data = randomBytes(500);
        const digest = sha256(data);
        const dir = join(db.dataDir, 'blobs', digest.slice(0, 2), digest.slice(2, 4));
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, digest), data);
        assert.equal(await store.blobs.has(digest), true);
        assert.deepEqual(await store.blobs.get(digest), data);
        await store.blobs.delete(digest);
        assert.equal(existsSync(join(dir, digest)), false);
      });
    }
  });

  describe('change log', () => {
    test('writes through the repos append rows in order, filterable by mailbox, type and position', async () => {
      const teamId = await newTeam(store);
      const start = await lastChangeId(store);
      const domain = domainRow(teamId, `changes-${newId('req').slice(4)}.test`);
      await store.domains.insert(domain);
      await store.domains.update(domain.id, { verification_status: 'verified', updated_at: now() });
      const mailbox = mailboxRow(teamId, domain.id, `bot@${domain.domain}`);
      await store.mailboxes.insert(mailbox);
      await store.mailboxes.update(mailbox.id, { status: 'suspended', updated_at: now() });
      await store.filters.put({ owner_kind: 'mailbox', owner_id: mailbox.id, mode: 'allowlist', rules: '[]', updated_at: now() }, teamId);
      const other = domainRow(teamId, `other-${newId('req').slice(4)}.test`);
      await store.domains.insert(other);
      await store.domains.delete(other.id);

      const rows = await store.changes.list({ teamId, afterId: start, limit: 100 });
      assert.deepEqual(
        rows.map((r) => [r.type, r.object_id, r.kind, r.mailbox_id]),
        [
          ['domain', domain.id, 'created', null],
          ['domain', domain.id, 'updated', null],
          ['mailbox', mailbox.id, 'created', mailbox.id],
          ['mailbox', mailbox.id, 'updated', mailbox.id],
          ['mailbox_filter', mailbox.id, 'updated', mailbox.id],
          ['domain', other.id, 'created', null],
          ['domain', other.id, 'destroyed', null],
        ],
      );
      const ids = rows.map((r) => r.change_id);
      assert.ok(ids.every((id, i) => typeof id === 'number' && (i === 0 || id > ids[i - 1]!)), `change ids increase: ${ids.join(',')}`);
      assert.ok(rows.every((r) => r.team_id === teamId && typeof r.created_at === 'string'));

      const mine = await store.changes.list({ mailboxId: mailbox.id, limit: 100 });
      assert.deepEqual(mine.map((r) => r.type), ['mailbox', 'mailbox', 'mailbox_filter']);
      const typed = await store.changes.list({ mailboxId: mailbox.id, type: 'mailbox', limit: 100 });
      assert.equal(typed.length, 2);
      const resumed = await store.changes.list({ teamId, afterId: ids[2], limit: 2 });
      assert.deepEqual(resumed.map((r) => r.change_id), ids.slice(3, 5));
    });

    test('appendMany writes every entry, in order, with increasing ids, for any count', async () => {
      const teamId = await newTeam(store);
      for (const count of [1, 3, 32, 51]) {
        const start = await lastChangeId(store);
        const entries = Array.from({ length: count }, (_, i) => ({ teamId, mailboxId: `mbx_many${count}`, type: i % 2 ? 'folder' : 'thread', objectId: `obj${i}`, kind: 'updated' as const }));
        await store.transaction(async (tx) => tx.changes.appendMany(entries));
        const rows = await store.changes.list({ teamId, afterId: start, limit: 100 });
        assert.deepEqual(
          rows.map((r) => [r.type, r.object_id, r.mailbox_id]),
          entries.map((e) => [e.type, e.objectId, e.mailboxId]),
          `${count} entries`,
        );
        assert.ok(rows.every((r, i) => i === 0 || r.change_id > rows[i - 1]!.change_id));
        assert.equal(await store.changes.latest(`mbx_many${count}`, 'folder'), count > 1 ? Math.max(...rows.filter((r) => r.type === 'folder').map((r) => r.change_id)) : 0);
      }
    });

    test('a transaction that throws after writing leaves neither the data nor its change-log rows', async () => {
      const teamId = await newTeam(store);
      const start = await lastChangeId(store);
      const domain = domainRow(teamId, `rollback-${newId('req').slice(4)}.test`);
      const mailbox = mailboxRow(teamId, domain.id, `bot@${domain.domain}`);
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.domains.insert(domain);
          await tx.mailboxes.insert(mailbox);
          await tx.mailboxes.update(mailbox.id, { display_name: 'x', updated_at: now() });
          // Inside the transaction its own writes are visible.
          assert.equal((await tx.domains.get(domain.id))?.id, domain.id);
          assert.equal((await tx.changes.list({ afterId: start, limit: 100 })).length, 3);
          throw new Error('boom after writing');
        }),
        /boom after writing/,
      );
      assert.equal(await store.domains.get(domain.id), undefined);
      assert.equal(await store.mailboxes.get(mailbox.id), undefined);
      assert.deepEqual(await store.changes.list({ afterId: start, limit: 100 }), []);

      // A database error part-way rolls back what came before it too.
      const existing = domainRow(teamId, `taken-${newId('req').slice(4)}.test`);
      await store.domains.insert(existing);
      const mid = await lastChangeId(store);
      const first = domainRow(teamId, `first-${newId('req').slice(4)}.test`);
      const err = await caught(() =>
        store.transaction(async (tx) => {
          await tx.domains.insert(first);
          await tx.domains.insert({ ...domainRow(teamId, existing.domain) });
        }),
      );
      assert.equal(isUniqueViolation(err), true, String(err));
      assert.equal(await store.domains.get(first.id), undefined);
      assert.deepEqual(await store.changes.list({ afterId: mid, limit: 100 }), []);

      // And a transaction that returns commits both, returning its value.
      const ok = domainRow(teamId, `commit-${newId('req').slice(4)}.test`);
      const value = await store.transaction(async (tx) => {
        await tx.domains.insert(ok);
        return 'done';
      });
      assert.equal(value, 'done');
      assert.equal((await store.domains.get(ok.id))?.domain, ok.domain);
      assert.deepEqual((await store.changes.list({ afterId: mid, limit: 100 })).map((r) => [r.object_id, r.kind]), [[ok.id, 'created']]);
    });
  });

  describe('event log', () => {
    test('appendMany gives seqs in the order given, across its chunks, as the rows stored read back', async () => {
      const teamId = await newTeam(store);
      const drafts = Array.from({ length: 41 }, (_, i) => ({
        id: newId('evt'),
        team_id: teamId,
        mailbox_id: null,
        type: 'message.received',
        occurred_at: now(),
        data: JSON.stringify({ n: i }),
        realtime: null,
        webhook_id: null,
      }));
      const rows = await store.transaction((tx) => tx.events.appendMany(drafts));
      assert.deepEqual(rows.map((r) => r.id), drafts.map((d) => d.id));
      assert.ok(rows.every((r, i) => i === 0 || r.seq > rows[i - 1]!.seq), 'seqs increase in the order given');
      const stored = await store.events.after(rows[0]!.seq - 1, 100);
      assert.deepEqual(stored.map((r) => [r.seq, r.id, JSON.parse(r.data).n]), rows.map((r, i) => [r.seq, r.id, i]));
    });
  });

  describe('idempotency records', () => {
    const ttl = 24 * 3600_000;

    test('claim, claim again, complete, replay, release', async () => {
      const scope = `team:${newId('team')}:POST /mailboxes`;
      const t = Date.now();
      assert.equal(await store.idempotency.claim(idemRow(scope, 'k1', t, ttl)), null);
      const inFlight = await store.idempotency.claim(idemRow(scope, 'k1', t + 1, ttl, 'fp-2'));
      assert.equal(inFlight?.state, 'in_flight');
      assert.equal(inFlight?.fingerprint, 'fp-1', 'the existing record is returned, not the new one');

      // The same key in another scope is a different record.
      assert.equal(await store.idempotency.claim(idemRow(`${scope}x`, 'k1', t, ttl)), null);

      await store.idempotency.complete(scope, 'k1', 201, '{"status":201}');
      const done = await store.idempotency.claim(idemRow(scope, 'k1', t + 2, ttl));
      assert.equal(done?.state, 'done');
      assert.equal(done?.status_code, 201);
      assert.equal(done?.response, '{"status":201}');
      assert.equal(done?.created_at, iso(t));

      await store.idempotency.release(scope, 'k1');
      assert.equal(await store.idempotency.claim(idemRow(scope, 'k1', t + 3, ttl, 'fp-3')), null);
      assert.equal((await store.idempotency.claim(idemRow(scope, 'k1', t + 4, ttl)))?.fingerprint, 'fp-3');
    });

    test('an expired record is replaced by a new claim, and purgeExpired drops only expired ones', async () => {
      const scope = `team:${newId('team')}:POST /domains`;
      const t = Date.parse('2030-01-01T00:00:00.000Z');
      assert.equal(await store.idempotency.claim(idemRow(scope, 'old', t, 1000)), null);
      await store.idempotency.complete(scope, 'old', 200, '{}');
      // Still live one millisecond before expiry...
      assert.equal((await store.idempotency.claim(idemRow(scope, 'old', t + 999, ttl, 'fp-new')))?.state, 'done');
      // ...and replaced at expiry.
      assert.equal(await store.idempotency.claim(idemRow(scope, 'old', t + 1000, ttl, 'fp-new')), null);
      const replaced = await store.idempotency.claim(idemRow(scope, 'old', t + 1001, ttl));
      assert.equal(replaced?.fingerprint, 'fp-new');
      assert.equal(replaced?.state, 'in_flight');

      assert.equal(await store.idempotency.claim(idemRow(scope, 'short', t, 10)), null);
      assert.equal(await store.idempotency.claim(idemRow(scope, 'long', t, ttl)), null);
      assert.ok((await store.idempotency.purgeExpired(iso(t + 10))) >= 1);
      assert.equal(await store.idempotency.claim(idemRow(scope, 'short', t + 11, 10, 'fp-again')), null);
      assert.equal((await store.idempotency.claim(idemRow(scope, 'long', t + 11, ttl, 'fp-again')))?.fingerprint, 'fp-1');
    });

    test('concurrent claims of one key: exactly one wins', async () => {
      const scope = `team:${newId('team')}:POST /race`;
      const t = Date.now();
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.idempotency.claim(idemRow(scope, 'race', t, ttl, `fp-${i}`))));
      assert.equal(results.filter((r) => r === null).length, 1);
      const winner = results.indexOf(null);
      for (const r of results) if (r !== null) assert.equal(r.fingerprint, `fp-${winner}`);
    });

    test('a claim of a taken key inside a transaction answers the record and the transaction goes on', async () => {
      const scope = `team:${newId('team')}:POST /tx`;
      const t = Date.now();
      assert.equal(await store.idempotency.claim(idemRow(scope, 'k', t, ttl)), null);
      const teamId = newId('team');
      const existing = await store.transaction(async (tx) => {
        const r = await tx.idempotency.claim(idemRow(scope, 'k', t + 1, ttl, 'fp-2'));
        await tx.teams.insert({ id: teamId, name: 'after claim', created_at: now() });
        return r;
      });
      assert.equal(existing?.fingerprint, 'fp-1');
      assert.equal((await store.teams.get(teamId))?.name, 'after claim');
    });
  });

  describe('unique violations', () => {
    test('isUniqueViolation recognises primary-key and unique-index violations, and nothing else', async () => {
      const teamId = await newTeam(store);
      const pk = await caught(() => store.teams.insert({ id: teamId, name: 'again', created_at: now() }));
      assert.equal(isUniqueViolation(pk), true, String(pk));

      const domain = domainRow(teamId, `uq-${newId('req').slice(4)}.test`);
      await store.domains.insert(domain);
      const byName = await caught(() => store.domains.insert(domainRow(teamId, domain.domain)));
      assert.equal(isUniqueViolation(byName), true, String(byName));

      // One live mailbox per address; deleted rows may repeat it.
      const live = mailboxRow(teamId, domain.id, `one@${domain.domain}`);
      await store.mailboxes.insert(live);
      const twice = await caught(() => store.mailboxes.insert(mailboxRow(teamId, domain.id, live.email)));
      assert.equal(isUniqueViolation(twice), true, String(twice));
      await store.mailboxes.update(live.id, { status: 'deleted', deleted_at: now(), updated_at: now() });
      await store.mailboxes.insert(mailboxRow(teamId, domain.id, live.email));
      await store.mailboxes.insert({ ...mailboxRow(teamId, domain.id, live.email), status: 'deleted' });

      const key = { team_id: teamId, kind: 'root' as const, mailbox_id: null, name: null, secret_hash: sha256(randomBytes(8)), key_prefix: 'smx_root_abcd', key_suffix: 'wxyz', created_at: now(), revoked_at: null };
      await store.keys.insert({ id: newId('smx'), ...key });
      const sameHash = await caught(() => store.keys.insert({ id: newId('smx'), ...key }));
      assert.equal(isUniqueViolation(sameHash), true, String(sameHash));

      const notNull = await caught(() => store.teams.insert({ id: newId('team'), name: null as unknown as string, created_at: now() }));
      assert.equal(isUniqueViolation(notNull), false, String(notNull));
      assert.equal(isUniqueViolation(new Error('duplicate key value violates unique constraint')), false);
      assert.equal(isUniqueViolation(null), false);
      assert.equal(isUniqueViolation(undefined), false);
    });
  });
});
