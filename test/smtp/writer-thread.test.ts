// The ingest writer thread (SQLite): received mail is written by a thread with its own connection
// while the main thread speaks SMTP and writes through the store's connection. Delivered mail must
// come out the same as when the store's connection writes it (PostgreSQL runs the same test with
// no thread): stored, counted against the quota, logged, announced once to the event listeners,
// and handed to the webhook outbox. If the thread dies, mail keeps being stored.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { IngestWriterThread } from '../../src/app/ingest-writer.ts';
import type { EventRow } from '../../src/store/index.ts';
import { describeEachBackend } from '../helpers/backends.ts';
import { buildMessage, createMailbox, type TestMailbox } from '../helpers/mail.ts';
import { startSmtpRig, storedMessages, transact, type SmtpRig } from '../helpers/smtp.ts';

describeEachBackend('ingest writer thread', (backend) => {
  let rig: SmtpRig;
  const boxes: TestMailbox[] = [];
  const heard: { event: EventRow }[] = [];
  before(async () => {
    rig = await startSmtpRig(backend);
    for (const name of ['w1', 'w2', 'w3']) boxes.push(await createMailbox(rig.app, name));
    rig.app.services.events.subscribe((event) => heard.push({ event }));
  });
  after(async () => rig.close());

  const writer = (): IngestWriterThread | null => {
    const w = rig.app.services.ingest.writerInUse;
    return w instanceof IngestWriterThread ? w : null;
  };

  test('the thread writes on SQLite only; PostgreSQL writes on the pool', () => {
    if (backend.name === 'sqlite') assert.ok(writer(), 'SQLite: a writer thread by default');
    else assert.equal(rig.app.services.ingest.writerInUse, null);
  });

  test('concurrent deliveries, with API writes on the store connection meanwhile: every message stored, logged, counted and announced once', async () => {
    const before = writer()?.batchesWritten ?? 0;
    const sent = 45;
    const heardBefore = heard.length;
    const deliveries = Array.from({ length: sent }, async (_, i) => {
      const box = boxes[i % boxes.length]!;
      const raw = await buildMessage({ from: 'sender@example.org', to: box.email, subject: `load ${i}`, text: `message ${i}`, messageId: `<load-${i}@example.org>` });
      return transact(rig.port, 'sender@example.org', [box.email], raw);
    });
    // Writes through the store's own connection while batches are being written by the thread.
    const apiWrites = boxes.map(async (box, i) => {
      for (let n = 0; n < 5; n++) {
        const r = await rig.app.api('POST', '/api/v1/mailbox/folders', { token: box.key, body: { name: `Side ${i}-${n}` } });
        assert.equal(r.status, 201, JSON.stringify(r.body));
      }
    });
    const results = await Promise.all(deliveries);
    await Promise.all(apiWrites);
    for (const r of results) assert.match(r.data?.last ?? '', /^250 2\.6\.0 /);

    let total = 0;
    for (const [b, box] of boxes.entries()) {
      const rows = await storedMessages(rig.app, box.id);
      const expected = Array.from({ length: sent }, (_, i) => i).filter((i) => i % boxes.length === b);
      assert.deepEqual(rows.map((r) => r.subject).sort(), expected.map((i) => `load ${i}`).sort());
      total += rows.length;
      // Quota: the bytes of what is stored, exactly.
      const mailbox = await rig.app.services.store.mailboxes.get(box.id);
      assert.equal(mailbox?.used_bytes, rows.reduce((sum, r) => sum + r.size_bytes, 0));
      // Through the API: the list shows them, and the custom folders written meanwhile exist.
      const list = await rig.app.api('GET', '/api/v1/mailbox/messages?limit=100', { token: box.key });
      assert.equal(list.status, 200);
      assert.equal(list.body.data.length, rows.length);
      const folders = await rig.app.api('GET', '/api/v1/mailbox/folders', { token: box.key });
      assert.equal(folders.body.data.filter((f: { name: string }) => f.name.startsWith('Side ')).length, 5);
    }
    assert.equal(total, sent);

    // One accepted incoming-log row per message, committed with it.
    const accepted = rig.logs.accepted.filter((l) => /^load \d+$/.test(l.subject ?? ''));
    assert.equal(accepted.length, sent);
    for (const row of accepted) assert.equal((await rig.app.services.store.incomingLogs.get(row.id))?.status, 'accepted');

    // Each message.received event reaches the listeners once, in seq order. (Usually as this
    // process's own; the safety-net poll may read one back from the log first.)
    const deadline = Date.now() + 5000;
    while (heard.length - heardBefore < sent && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const received = heard.slice(heardBefore).filter((h) => h.event.type === 'message.received');
    assert.equal(received.length, sent);
    assert.equal(new Set(received.map((h) => h.event.id)).size, sent);
    const seqs = heard.slice(heardBefore).map((h) => Number(h.event.seq));
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));

    if (backend.name === 'sqlite') assert.ok(writer()!.batchesWritten > before, 'the batches went through the thread');
  });

  test('messages delivered through the thread fill the webhook outbox of a subscribed webhook', async () => {
    const created = await rig.app.api('POST', '/api/v1/webhooks', { body: { url: 'https://hooks.example.org/in', event_types: ['message.received'] } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const webhookId = created.body.data.id as string;
    let woken = 0;
    const unsubscribe = rig.app.services.webhooks.onEnqueued(() => woken++);
    const heardBefore = heard.length;
    const raw = await buildMessage({ from: 'sender@example.org', to: boxes[0]!.email, subject: 'for the hook', text: 'hi' });
    const r = await transact(rig.port, 'sender@example.org', [boxes[0]!.email], raw);
    assert.match(r.data?.last ?? '', /^250 /);
    const deadline = Date.now() + 5000;
    while (heard.length === heardBefore && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
    unsubscribe();
    const event = heard.slice(heardBefore).find((h) => h.event.type === 'message.received');
    assert.ok(event);
    assert.ok(woken > 0, 'the webhook worker is woken for the outbox rows');
    // The outbox row, as the webhook worker would claim it.
    const far = new Date(Date.now() + 86_400_000).toISOString();
    const claimed = await rig.app.services.store.webhooks.claim(far, far, 100);
    assert.deepEqual(
      claimed.filter((d) => d.event_id === event.event.id).map((d) => d.webhook_id),
      [webhookId],
    );
  });

  test('a 250 waits for the flusher thread\'s flush of the WAL after the writer thread\'s commit; a failed flush answers 451', { skip: backend.name !== 'sqlite' }, async () => {
    // The writer thread's connection does not flush its commits: the flusher thread flushes the
    // (shared) WAL on hearing of them, and only then is the sender answered. A rig of its own: the
    // gate has to reach the flusher when it starts, at the first message.
    const own = await startSmtpRig(backend);
    const gate = new Int32Array(new SharedArrayBuffer(8));
    const open = (): void => {
      Atomics.store(gate, 0, 0);
      Atomics.notify(gate, 0);
    };
    try {
      const w = own.app.services.ingest.writerInUse;
      assert.ok(w instanceof IngestWriterThread);
      w.flushGate = gate;
      Atomics.store(gate, 0, 1);
      const box = await createMailbox(own.app, 'flush1');
      const raw = await buildMessage({ from: 'sender@example.org', to: box.email, subject: 'flushed first', text: 'durable before the 250' });
      let answered = false;
      const delivery = transact(own.port, 'sender@example.org', [box.email], raw).then((r) => ((answered = true), r));
      // Committed (another connection reads it), not yet flushed: no reply.
      const deadline = Date.now() + 5000;
      while (!(await storedMessages(own.app, box.id)).some((m) => m.subject === 'flushed first') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      assert.ok((await storedMessages(own.app, box.id)).some((m) => m.subject === 'flushed first'), 'committed by the writer thread');
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(answered, false, 'no 250 before the flush');
      open();
      assert.match((await delivery).data?.last ?? '', /^250 2\.6\.0 /);

      // The flush fails: the sender is told to try again, never 250.
      Atomics.store(gate, 1, 1);
      const raw2 = await buildMessage({ from: 'sender@example.org', to: box.email, subject: 'flush fails', text: 'not acknowledged' });
      const r = await transact(own.port, 'sender@example.org', [box.email], raw2);
      assert.equal(r.data?.code, 451);
      assert.match(r.data?.last ?? '', /^451 4\.3\.0 /);
    } finally {
      Atomics.store(gate, 1, 0);
      open();
      await own.close();
    }
  });

  test('when the thread dies, the next messages are written on the store connection', { skip: backend.name !== 'sqlite' }, async () => {
    const w = writer()!;
    const thread = await w.thread!;
    await thread.terminate();
    const deadline = Date.now() + 5000;
    while (rig.app.services.ingest.writerInUse && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(rig.app.services.ingest.writerInUse, null, 'ingest no longer uses the dead thread');
    const raw = await buildMessage({ from: 'sender@example.org', to: boxes[1]!.email, subject: 'after the thread', text: 'still stored' });
    const r = await transact(rig.port, 'sender@example.org', [boxes[1]!.email], raw);
    assert.match(r.data?.last ?? '', /^250 2\.6\.0 /);
    const rows = await storedMessages(rig.app, boxes[1]!.id);
    assert.ok(rows.some((m) => m.subject === 'after the thread'));
  });
});

describeEachBackend('ingest flusher thread', (backend) => {
  test('when the flusher thread dies, the writer thread is stopped too and the next messages are written on the store connection', { skip: backend.name !== 'sqlite' }, async () => {
    const own = await startSmtpRig(backend);
    try {
      const box = await createMailbox(own.app, 'flusher1');
      const first = await transact(own.port, 'sender@example.org', [box.email], await buildMessage({ from: 'sender@example.org', to: box.email, subject: 'before', text: 'x' }));
      assert.match(first.data?.last ?? '', /^250 2\.6\.0 /);
      const w = own.app.services.ingest.writerInUse;
      assert.ok(w instanceof IngestWriterThread);
      const writerThread = await w.thread!;
      const writerGone = new Promise<void>((resolve) => writerThread.once('exit', () => resolve()));
      await w.flusherThread!.terminate();
      const deadline = Date.now() + 5000;
      while (own.app.services.ingest.writerInUse && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.equal(own.app.services.ingest.writerInUse, null, 'ingest no longer uses the threads');
      await writerGone;
      const r = await transact(own.port, 'sender@example.org', [box.email], await buildMessage({ from: 'sender@example.org', to: box.email, subject: 'after the flusher', text: 'still stored' }));
      assert.match(r.data?.last ?? '', /^250 2\.6\.0 /);
      assert.deepEqual((await storedMessages(own.app, box.id)).map((m) => m.subject).sort(), ['after the flusher', 'before']);
    } finally {
      await own.close();
    }
  });
});

describeEachBackend('ingest writer thread turned off', (backend) => {
  let rig: SmtpRig;
  before(async () => {
    rig = await startSmtpRig(backend, { MAILMUX_SQLITE_WRITER_THREAD: 'false' });
  });
  after(async () => rig.close());

  test('MAILMUX_SQLITE_WRITER_THREAD=false: the store connection writes received mail', async () => {
    assert.equal(rig.app.services.ingest.writerInUse, null);
    const box = await createMailbox(rig.app, 'inline');
    const raw = await buildMessage({ from: 'sender@example.org', to: box.email, subject: 'inline', text: 'hi' });
    const r = await transact(rig.port, 'sender@example.org', [box.email], raw);
    assert.match(r.data?.last ?? '', /^250 2\.6\.0 /);
    assert.deepEqual((await storedMessages(rig.app, box.id)).map((m) => m.subject), ['inline']);
  });
});
