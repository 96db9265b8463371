// Unit tests for subject normalisation and thread keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normaliseSubject, threadKeys } from './threading.ts';

test('reply and forward prefixes are stripped repeatedly, in any case and language', () => {
  const cases: Array<[string, string]> = [
    ['Re: Budget', 'Budget'],
    ['RE: re: Re:Budget', 'Budget'],
    ['Fwd: Budget', 'Budget'],
    ['Fw: FW: fwd: Budget', 'Budget'],
    ['AW: WG: Budget', 'Budget'],
    ['SV: VS: Budget', 'Budget'],
    ['Antw: Doorst: Budget', 'Budget'],
    ['TR : RV: Enc: Budget', 'Budget'],
    ['R: Odp: Budget', 'Budget'],
    ['回复: 转发：答复: Budget', 'Budget'],
    ['返信: 転送: Budget', 'Budget'],
    ['Re[2]: Re(3): Budget', 'Budget'],
    ['Re: Budget (fwd)', 'Budget'],
  ];
  for (const [input, expected] of cases) assert.equal(normaliseSubject(input), expected, input);
});

test('list tags are removed around prefixes, but never the whole subject', () => {
  assert.equal(normaliseSubject('[team] Re: Q3 planning'), 'Q3 planning');
  assert.equal(normaliseSubject('Re: [team] RE: Fwd: Q3 planning'), 'Q3 planning');
  assert.equal(normaliseSubject('[team] [PATCH 2/3] Fix parser'), 'Fix parser');
  assert.equal(normaliseSubject('[team]'), '[team]');
  assert.equal(normaliseSubject('Re: [team]'), '[team]');
});

test('whitespace is collapsed and ordinary words are kept', () => {
  assert.equal(normaliseSubject('  Re:\t  Quarterly \r\n  report  '), 'Quarterly report');
  for (const keep of ['Rest of the plan', 'Are we done?', 'Tracking: parcel', 'Reply needed', 'Encore: live', 'Rv park']) {
    assert.equal(normaliseSubject(keep), keep);
  }
  assert.equal(normaliseSubject(null), '');
  assert.equal(normaliseSubject(''), '');
  assert.equal(normaliseSubject('Re:'), '');
});

test('normalising a hostile subject stays linear', () => {
  const subject = 'Re: '.repeat(50_000) + '[x] '.repeat(10_000) + 'end';
  const started = performance.now();
  assert.equal(normaliseSubject(subject), 'end');
  assert.ok(performance.now() - started < 1000);
});

test('thread keys list the parent first, then References newest to oldest, without duplicates or self', () => {
  const keys = threadKeys({
    message_id: 'msg-4@example.org',
    in_reply_to: 'msg-3@example.com',
    references: ['msg-1@example.com', 'msg-2@example.org', 'msg-3@example.com', 'msg-4@example.org'],
    subject: 'Re: [team] RE: Fwd: Q3 Planning',
  });
  assert.deepEqual(keys, {
    message_ids: ['msg-3@example.com', 'msg-2@example.org', 'msg-1@example.com'],
    subject_key: 'q3 planning',
    is_reply_or_forward: true,
  });
});

test('a new message has no ids and a plain subject key', () => {
  assert.deepEqual(threadKeys({ message_id: 'a@b', in_reply_to: null, references: [], subject: 'Hello  World' }), {
    message_ids: [],
    subject_key: 'hello world',
    is_reply_or_forward: false,
  });
  assert.deepEqual(threadKeys({ message_id: null, in_reply_to: null, references: [], subject: null }), {
    message_ids: [],
    subject_key: null,
    is_reply_or_forward: false,
  });
});
