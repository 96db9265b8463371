// Migration 015 (PostgreSQL): vectors stored before the full-text document was split into words,
// where the parser had kept an address, a host name or a number like 2026-11 as one lexeme, are
// split the way queries are, keeping positions and weights. A message is stored, its vector made
// the old way, the migration run: the message is then found by the parts of its sender's address,
// and a vector with nothing to split is left as it was. SQLite's FTS5 always split there.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { migration015 } from '../../src/store/migrations/015-search-words.ts';
import { parseMessage } from '../../src/mime/parse.ts';
import { prepareMessage } from '../../src/services/mail/ingest.ts';
import { describeEachBackend } from '../helpers/backends.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { buildMessage, createMailbox, type TestMailbox } from '../helpers/mail.ts';

describeEachBackend('migration 015: full-text words', (backend) => {
  const skip = backend.name !== 'postgres' && 'FTS5 splits addresses into words; the migration does nothing on SQLite';
  let app: TestApp;
  let box: TestMailbox;
  let pool: pg.Pool;
  let db: Kysely<any>;

  before(async () => {
    if (skip) return;
    app = await startTestApp(backend);
    box = await createMailbox(app, 'words');
    pool = new pg.Pool({ connectionString: app.config.databaseUrl!, options: `-c search_path=${app.pgSchema!}` });
    db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
  });
  after(async () => {
    if (skip) return;
    await db.destroy();
    await app.close();
  });

  const found = async (q: string): Promise<string[]> => {
    const r = await app.api('GET', `/api/v1/mailbox/messages?q=${encodeURIComponent(q)}`, { token: box.key });
    assert.equal(r.status, 200);
    return r.body.data.map((m: { subject: string }) => m.subject);
  };
  const vector = async (id: string): Promise<string> => (await pool.query<{ v: string }>('SELECT search::text AS v FROM messages WHERE id = $1', [id])).rows[0]!.v;

  test('old vectors are split into words, positions and weights kept; others are left as they were', { skip }, async () => {
    const rawA = await buildMessage({ from: 'Bob <bob@partner.example>', to: box.email, subject: 'Invoice 2026-11', text: 'See https://vendor.example/pay for the invoice.' });
    const rawB = await buildMessage({ from: 'Plain <plain@other.example>', to: box.email, subject: 'Plain words', text: 'Nothing here to split' });
    const [a, b] = await Promise.all([rawA, rawB].map((raw) => app.services.ingest.deliver({ raw, targets: [{ mailboxId: box.id }] })));
    const idA = a!.delivered[0]!.messageId;
    const idB = b!.delivered[0]!.messageId;
    // A's vector as the tree before made it: the folded texts, not split into words.
    const s = prepareMessage(await parseMessage(rawA)).search;
    await pool.query(`UPDATE messages SET search = setweight(to_tsvector('simple', $2), 'A') || to_tsvector('simple', $3) WHERE id = $1`, [idA, s.subject, `${s.subject}\n${s.addresses}\n${s.body}`]);
    assert.match(await vector(idA), /'bob@partner\.example'/);
    assert.deepEqual(await found('partner'), [], 'the old vector: not found by a part of the address');
    // B was made the new way and gives the migration nothing to split.
    const b0 = await vector(idB);
    await migration015(db, 'postgres');
    for (const q of ['partner', 'bob@partner.example', '2026-11', 'vendor.example', 'invoice']) assert.deepEqual(await found(q), ['Invoice 2026-11'], q);
    const v = await vector(idA);
    assert.doesNotMatch(v, /[@.]/, 'no lexeme keeps an address or a host name whole');
    assert.match(v, /'invoice':1A,/, 'the subject keeps its weight and the positions theirs');
    assert.match(v, /'bob':\d+,\d+/, 'a part that also stood alone has both positions');
    assert.equal(await vector(idB), b0);
    assert.deepEqual(await found('plain'), ['Plain words']);
    // Run again: nothing is left to split.
    await migration015(db, 'postgres');
    assert.equal(await vector(idA), v);
  });
});
