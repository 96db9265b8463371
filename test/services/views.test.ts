import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { MessageRow } from '../../src/store/index.ts';
import { addressFragments, DownloadTokens, summaryJson, summaryView, type ViewContext } from '../../src/services/mail/views.ts';

const vc: ViewContext = { baseUrl: 'https://mail.example', tokens: new DownloadTokens(Buffer.alloc(32, 7)), now: Date.parse('2026-11-01T00:00:00Z') };

// Text that tries to look like the stored JSON's keys, quotes, escapes, controls and non-ASCII.
const nasty = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.constantFrom(',"to":', ',"sender":[', '"},{"email":"x","name":"', '\\', '\\"', '\n\t\u0000\u001f\u007f', 'Zürich 東京 🎉', '\u2028\u2029', ''),
);
const address = fc.record({ email: nasty, name: fc.option(nasty, { nil: null }) });
const list = fc.array(address, { maxLength: 3 });
const addresses = fc.record({ from: fc.option(address, { nil: null }), sender: fc.option(address, { nil: null }), to: list, cc: list, bcc: list, reply_to: list });
const attachment = fc.record({
  part_id: fc.constantFrom('2', '1.2', '3.1.4'),
  filename: fc.option(nasty, { nil: null }),
  content_type: fc.constantFrom('application/pdf', 'text/plain; charset="utf-8"'),
  size_bytes: fc.option(fc.nat(), { nil: null }),
  disposition: fc.constantFrom(null, 'attachment', 'inline'),
  content_id: fc.option(nasty, { nil: null }),
});
const bit = fc.constantFrom(0, 1);

const rowArb = fc.record({
  id: fc.constantFrom('msg_abc123', 'msg_0000000000000000000000zz'),
  thread_id: fc.constantFrom('thr_abc', 'thr_zz9'),
  addresses,
  subject: fc.option(nasty, { nil: null }),
  preview: fc.option(nasty, { nil: null }),
  received_at: fc.constantFrom('2026-11-01T08:00:00.000Z', '1999-01-01T00:00:00.000Z'),
  sent_at: fc.option(fc.constantFrom('2026-11-01T07:59:59.000Z'), { nil: null }),
  size_bytes: fc.nat(),
  attachments: fc.array(attachment, { maxLength: 2 }),
  keywords: fc.uniqueArray(fc.constantFrom('$seen', '$flagged', '$answered', '$draft', 'triaged', 'a-b_c.d'), { maxLength: 4 }),
  seen: bit,
  flagged: bit,
  answered: bit,
  draft: bit,
  folders: fc.uniqueArray(fc.constantFrom('fld_a', 'fld_b_2', 'fld_zz'), { maxLength: 3 }),
});

type RowInput = typeof rowArb extends fc.Arbitrary<infer T> ? T : never;

function toRow(r: RowInput): MessageRow {
  // The stored columns are written by JSON.stringify at ingest (services/mail/ingest.ts).
  return {
    id: r.id,
    mailbox_id: 'mbx_1',
    thread_id: r.thread_id,
    addresses: JSON.stringify(r.addresses),
    subject: r.subject,
    preview: r.preview,
    received_at: r.received_at,
    sent_at: r.sent_at,
    size_bytes: r.size_bytes,
    has_attachments: r.attachments.length > 0 ? 1 : 0,
    attachments: JSON.stringify(r.attachments),
    keywords: JSON.stringify([...r.keywords].sort()),
    seen: r.seen,
    flagged: r.flagged,
    answered: r.answered,
    draft: r.draft,
  } as unknown as MessageRow;
}

test('summaryJson writes the same bytes as JSON.stringify(summaryView)', () => {
  fc.assert(
    fc.property(rowArb, (r) => {
      const row = toRow(r);
      const expected = JSON.stringify(summaryView(row, r.folders, vc));
      assert.equal(summaryJson(row, r.folders, vc), expected);
      // The row's folder_ids text (sorted, comma-separated; migration 010), as list pages pass it.
      assert.equal(summaryJson(row, [...r.folders].sort().join(','), vc), JSON.stringify(summaryView(row, [...r.folders].sort(), vc)));
    }),
    { numRuns: 2000 },
  );
});

test('folder_ids text of any shape is written as the JSON of its sorted ids', () => {
  const row = toRow({ id: 'msg_abc123', thread_id: 'thr_abc', addresses: { from: null, sender: null, to: [], cc: [], bcc: [], reply_to: [] } as never, subject: 's', preview: null, received_at: '2026-11-01T08:00:00.000Z', sent_at: null, size_bytes: 1, attachments: [], keywords: [], seen: 0, flagged: 1, answered: 0, draft: 0, folders: [] });
  for (const text of ['', 'fld_a', 'fld_a,fld_b', 'fld_b,fld_a', 'fld_"q",fld_\\', 'fld_é']) {
    const ids = text === '' ? [] : text.split(',').sort();
    assert.equal(summaryJson(row, text, vc), JSON.stringify(summaryView(row, ids, vc)), text);
  }
});

test('addresses of another shape take the parsing path, with the same bytes', () => {
  const shapes = [
    { to: [], from: null, cc: [], bcc: [], sender: null, reply_to: [] }, // other key order
    { from: { email: 'a@b', name: null }, to: [], cc: [], bcc: [] }, // no sender / reply_to
    { from: { name: 'A', email: 'a@b' }, sender: null, to: [{ name: null, email: 'c@d' }], cc: [], bcc: [], reply_to: [] }, // keys of an address reversed: copied as stored
  ];
  for (const a of shapes) {
    const row = toRow({ id: 'msg_abc123', thread_id: 'thr_abc', addresses: a as never, subject: 's', preview: null, received_at: '2026-11-01T08:00:00.000Z', sent_at: null, size_bytes: 1, attachments: [], keywords: [], seen: 0, flagged: 1, answered: 0, draft: 0, folders: [] });
    assert.equal(summaryJson(row, ['fld_a'], vc), JSON.stringify(summaryView(row, ['fld_a'], vc)));
  }
  assert.equal(addressFragments('{"to":[],"from":null}'), null);
  assert.equal(addressFragments('{"from":null,"sender":null,"to":[],"cc":[],"bcc":[],"reply_to":[]}')?.join('|'), 'null|[]|[]|[]');
});
