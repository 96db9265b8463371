// The hot point reads (store/fast-read.ts, repos/cached-read.ts): the key and mailbox reads every
// request makes. Two stores on one database stand for two processes (a server and the CLI, or two
// servers): whatever one commits, the other's next read returns, however often it read the row
// before (SQLite keeps rows only while the WAL-index header is unchanged). Its own writes too, and
// reads inside a transaction see that transaction's writes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { describeEachBackend } from '../helpers/backends.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import { hashSecret } from '../../src/core/ids.ts';

const NOW = '2026-01-01T00:00:00.000Z';

describeEachBackend('fast point reads', (backend) => {
  let drop: () => Promise<void>;
  let a: Store;
  let b: Store;

  before(async () => {
    const db = await backend.provision();
    drop = db.drop;
    const opts = { databaseUrl: db.databaseUrl, dataDir: db.dataDir, ...(db.pgSchema ? { pgSchema: db.pgSchema } : {}) };
    a = await openStore(opts);
    b = await openStore(opts);
  });
  after(async () => {
    await a.close();
    await b.close();
    await drop();
  });

  async function mailbox(id: string, status: 'active' | 'suspended' = 'active'): Promise<void> {
    await a.mailboxes.insert({
      id,
      team_id: 'team_a',
      domain_id: 'mdom_a',
      email: `${id}@example.test`,
      display_name: null,
      quota_bytes: null,
      used_bytes: 0,
      send_scope: '{"type":"all"}',
      status,
      cleanup_pending: 0,
      created_at: NOW,
      updated_at: NOW,
      deleted_at: null,
    });
  }

  async function key(id: string, secret: string, mailboxId: string | null): Promise<void> {
    await a.keys.insert({
      id,
      team_id: 'team_a',
      kind: mailboxId ? 'mailbox' : 'root',
      mailbox_id: mailboxId,
      name: null,
      secret_hash: hashSecret(secret),
      key_prefix: secret.slice(0, 13),
      key_suffix: secret.slice(-4),
      created_at: NOW,
      revoked_at: null,
    });
  }

  test('a key revoked by another process reads as revoked at once, however often it was read before', async () => {
    await key('smx_root1', 'smx_root_one', null);
    const hash = hashSecret('smx_root_one');
    for (let i = 0; i < 5; i++) assert.equal((await a.keys.forAuthentication(hash))?.revoked_at, null);
    assert.equal((await a.keys.byHash(hash))?.id, 'smx_root1');
    await b.keys.revoke('smx_root1', NOW);
    assert.equal((await a.keys.forAuthentication(hash))?.revoked_at, NOW);
    assert.equal((await a.keys.byHash(hash))?.revoked_at, NOW);
  });

  test('a mailbox suspended by another process: its key reads the new status, and so does the mailbox', async () => {
    await mailbox('mbx_one');
    await key('smx_mbx1', 'smx_mbx_one', 'mbx_one');
    const hash = hashSecret('smx_mbx_one');
    for (let i = 0; i < 5; i++) {
      const row = await a.keys.forAuthentication(hash);
      assert.equal(row?.mailbox_status, 'active');
      assert.equal(row?.mailbox_email, 'mbx_one@example.test');
      assert.equal((await a.mailboxes.get('mbx_one'))?.status, 'active');
    }
    await b.mailboxes.update('mbx_one', { status: 'suspended', updated_at: NOW });
    assert.equal((await a.keys.forAuthentication(hash))?.mailbox_status, 'suspended');
    assert.equal((await a.mailboxes.get('mbx_one'))?.status, 'suspended');
    await b.mailboxes.update('mbx_one', { status: 'deleted', updated_at: NOW, deleted_at: NOW });
    assert.equal((await a.mailboxes.get('mbx_one'))?.status, 'deleted');
  });

  test('the recipient reads (never kept) show what is committed now, by either process, and a transaction its own writes', async () => {
    await mailbox('mbx_rcpt');
    const email = 'mbx_rcpt@example.test';
    for (let i = 0; i < 3; i++) assert.equal((await a.mailboxes.liveByEmail(email))?.status, 'active');
    await b.mailboxes.update('mbx_rcpt', { status: 'suspended', updated_at: NOW });
    assert.equal((await a.mailboxes.liveByEmail(email))?.status, 'suspended');
    await a.mailboxes.update('mbx_rcpt', { display_name: 'Own write', updated_at: NOW });
    assert.equal((await a.mailboxes.liveByEmail(email))?.display_name, 'Own write');
    await b.mailboxes.update('mbx_rcpt', { status: 'deleted', updated_at: NOW, deleted_at: NOW });
    assert.equal(await a.mailboxes.liveByEmail(email), undefined);

    assert.equal((await a.filters.get('mailbox', 'mbx_rcpt'))?.mode, undefined);
    await b.filters.put({ owner_kind: 'mailbox', owner_id: 'mbx_rcpt', mode: 'denylist', rules: '[]', updated_at: NOW }, 'team_a');
    assert.equal((await a.filters.get('mailbox', 'mbx_rcpt'))?.mode, 'denylist');
    await a.transaction(async (tx) => {
      await tx.filters.put({ owner_kind: 'mailbox', owner_id: 'mbx_rcpt', mode: 'allowlist', rules: '[]', updated_at: NOW }, 'team_a');
      assert.equal((await tx.filters.get('mailbox', 'mbx_rcpt'))?.mode, 'allowlist');
    });
    assert.equal((await b.filters.get('mailbox', 'mbx_rcpt'))?.mode, 'allowlist');
    assert.equal(await a.domains.receivesMail('nowhere.example.test'), false);
  });

  test('a key whose mailbox row is gone reads with a null status', async () => {
    await key('smx_mbx2', 'smx_mbx_orphan', 'mbx_missing');
    const row = await a.keys.forAuthentication(hashSecret('smx_mbx_orphan'));
    assert.equal(row?.mailbox_id, 'mbx_missing');
    assert.equal(row?.mailbox_status, null);
    assert.equal(row?.mailbox_email, null);
    assert.equal(await a.keys.forAuthentication(hashSecret('smx_mbx_unknown')), undefined);
  });

  test('the key and a named mailbox in one read: each found or not on its own; changes by another process seen at once', async () => {
    await mailbox('mbx_named');
    await key('smx_root3', 'smx_root_three', null);
    const hash = hashSecret('smx_root_three');
    for (let i = 0; i < 3; i++) {
      const both = await a.keys.forAuthenticationWithMailbox(hash, 'mbx_named');
      assert.equal(both?.key.id, 'smx_root3');
      assert.equal(both?.key.mailbox_status, null);
      // The columns a mailbox's view and its team check use (the read takes no others).
      const full = (await b.mailboxes.get('mbx_named'))!;
      const { id, team_id, email, display_name, quota_bytes, send_scope, status, created_at } = full;
      assert.deepEqual(both?.mailbox, { id, team_id, email, display_name, quota_bytes, send_scope, status, created_at });
    }
    const noMailbox = await a.keys.forAuthenticationWithMailbox(hash, 'mbx_nosuchmailbox');
    assert.equal(noMailbox?.key.id, 'smx_root3');
    assert.equal(noMailbox?.mailbox, undefined);
    assert.equal(await a.keys.forAuthenticationWithMailbox(hashSecret('smx_root_unknown'), 'mbx_named'), undefined);
    await b.mailboxes.update('mbx_named', { display_name: 'Renamed', updated_at: NOW });
    await b.keys.revoke('smx_root3', NOW);
    const after = await a.keys.forAuthenticationWithMailbox(hash, 'mbx_named');
    assert.equal(after?.key.revoked_at, NOW);
    assert.equal(after?.mailbox?.display_name, 'Renamed');
  });

  test('own writes, inside and outside a transaction, are read back; a transaction reads its own writes', async () => {
    await mailbox('mbx_two');
    assert.equal((await a.mailboxes.get('mbx_two'))?.display_name, null);
    await a.mailboxes.update('mbx_two', { display_name: 'Two', updated_at: NOW });
    assert.equal((await a.mailboxes.get('mbx_two'))?.display_name, 'Two');
    await a.transaction(async (tx) => {
      await tx.mailboxes.update('mbx_two', { display_name: 'Three', updated_at: NOW });
      assert.equal((await tx.mailboxes.get('mbx_two'))?.display_name, 'Three');
    });
    assert.equal((await a.mailboxes.get('mbx_two'))?.display_name, 'Three');
    assert.equal((await b.mailboxes.get('mbx_two'))?.display_name, 'Three');
  });

  test('a rolled-back transaction leaves no trace, also for a read made while it was open', async () => {
    await mailbox('mbx_three');
    assert.equal((await a.mailboxes.get('mbx_three'))?.display_name, null);
    let during: Promise<{ display_name: string | null } | undefined> | undefined;
    await assert.rejects(
      a.transaction(async (tx) => {
        await tx.mailboxes.update('mbx_three', { display_name: 'uncommitted', updated_at: NOW });
        // A read outside the transaction, started while it is open (not awaited inside it: on
        // SQLite it may have to wait for the transaction to end).
        during = a.mailboxes.get('mbx_three');
        throw new Error('roll back');
      }),
      /roll back/,
    );
    assert.equal((await during)?.display_name, null, 'never the uncommitted write');
    assert.equal((await a.mailboxes.get('mbx_three'))?.display_name, null);
  });

  // The HTTP request path reads with sameTurn: one check of the WAL-index header per event-loop turn.
  const sqliteOnly = backend.name === 'sqlite' ? {} : { skip: 'PostgreSQL reads are never shared' };

  /** Reads with sameTurn in microtasks of this turn until `until` holds; true if it did before the turn ended. */
  async function withinTurn(read: () => unknown, until: (row: any) => boolean): Promise<boolean> {
    let turnOver = false;
    setImmediate(() => (turnOver = true));
    for (let i = 0; i < 500 && !turnOver; i++) {
      const row = read();
      assert.ok(!(row instanceof Promise), 'a fast read answers synchronously');
      if (until(row)) return !turnOver;
      await null;
    }
    return false;
  }

  test('reads sharing a turn see this process\'s own commit at once, within the turn', sqliteOnly, async () => {
    await key('smx_root4', 'smx_root_four', null);
    const hash = hashSecret('smx_root_four');
    for (let i = 0; i < 3; i++) assert.equal((await a.keys.forAuthentication(hash, true))?.revoked_at, null);
    // The revoke's statement runs a few microtasks from now, in this turn (only its flush waits).
    const revoking = a.keys.revoke('smx_root4', NOW);
    assert.ok(await withinTurn(() => a.keys.forAuthentication(hash, true), (row) => row?.revoked_at === NOW), 'revoke seen in the same turn');
    await revoking;
  });

  test('reads sharing a turn see a transaction of this process once it commits, never before', sqliteOnly, async () => {
    await mailbox('mbx_five');
    await key('smx_mbx5', 'smx_mbx_five', 'mbx_five');
    const hash = hashSecret('smx_mbx_five');
    for (let i = 0; i < 3; i++) assert.equal((await a.keys.forAuthenticationWithMailbox(hash, 'mbx_five', true))?.mailbox?.status, 'active');
    let committed = false;
    const suspending = a
      .transaction(async (tx) => {
        await tx.mailboxes.update('mbx_five', { status: 'suspended', updated_at: NOW });
        await tx.keys.revoke('smx_mbx5', NOW);
      })
      .then(() => (committed = true));
    // Reads between the transaction's writes and its COMMIT (same turn) show the committed state;
    // the first read after COMMIT shows the suspension, though total_changes() did not move at COMMIT.
    const seen = await withinTurn(
      () => a.keys.forAuthenticationWithMailbox(hash, 'mbx_five', true),
      (both) => {
        if (both?.mailbox?.status === 'suspended') assert.equal(both.key.revoked_at, NOW, 'both writes or neither');
        return both?.mailbox?.status === 'suspended';
      },
    );
    assert.ok(seen, 'the commit seen in the same turn');
    await suspending;
    assert.ok(committed);
  });

  test('reads sharing a turn see another process\'s commit from the next turn on', async () => {
    await key('smx_root6', 'smx_root_six', null);
    const hash = hashSecret('smx_root_six');
    for (let i = 0; i < 3; i++) assert.equal((await a.keys.forAuthentication(hash, true))?.revoked_at, null);
    await b.keys.revoke('smx_root6', NOW);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal((await a.keys.forAuthentication(hash, true))?.revoked_at, NOW);
    assert.equal((await a.keys.forAuthenticationWithMailbox(hash, 'mbx_none', true))?.key.revoked_at, NOW);
  });

  test('reads asked for together (one batched statement on PostgreSQL) each get their own answer', async () => {
    await mailbox('mbx_b1');
    await mailbox('mbx_b2', 'suspended');
    await key('smx_rootb', 'smx_root_batch', null);
    await key('smx_mbxb', 'smx_mbx_batch', 'mbx_b2');
    const root = hashSecret('smx_root_batch');
    const mbx = hashSecret('smx_mbx_batch');
    const unknown = hashSecret('smx_root_nobody');
    const asks: [string, string][] = [
      [root, 'mbx_b1'],
      [root, 'mbx_b2'],
      [mbx, 'mbx_b1'],
      [unknown, 'mbx_b1'],
      [root, 'mbx_nosuch'],
      [mbx, 'mbx_b2'],
    ];
    for (let round = 0; round < 2; round++) {
      const together = await Promise.all([...asks, ...asks].map(([h, m]) => a.keys.forAuthenticationWithMailbox(h, m)));
      const keysAlone = await Promise.all([root, mbx, unknown, root].map((h) => a.keys.forAuthentication(h)));
      for (const [i, [h, m]] of [...asks, ...asks].entries()) {
        const alone = await b.keys.forAuthenticationWithMailbox(h, m);
        assert.deepEqual(together[i], alone, `ask ${i}`);
      }
      assert.equal(together[0]?.mailbox?.id, 'mbx_b1');
      assert.equal(together[1]?.mailbox?.status, 'suspended');
      assert.equal(together[2]?.key.mailbox_status, 'suspended');
      assert.equal(together[3], undefined);
      assert.equal(together[4]?.mailbox, undefined);
      assert.deepEqual(keysAlone.map((k) => k?.id), ['smx_rootb', 'smx_mbxb', undefined, 'smx_rootb']);
    }
    // Callers that may change their row get their own, also when they asked together.
    const [m1, m2] = await Promise.all([a.mailboxes.get('mbx_b1'), a.mailboxes.get('mbx_b1')]);
    assert.ok(m1 && m2 && m1 !== m2);
    m1.display_name = 'changed by one caller';
    assert.equal(m2.display_name, null);
  });

  test('callers get their own copy of a kept row', async () => {
    await mailbox('mbx_four');
    const first = await a.mailboxes.get('mbx_four');
    assert.ok(first);
    first.display_name = 'changed by a caller';
    assert.equal((await a.mailboxes.get('mbx_four'))?.display_name, null);
  });
});
