import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attributionAt, genericAttributionEndingAt, headerBlockAt, isForwardBlock, isForwardMarker, isOriginalMessageSeparator } from './reply-headers.ts';

test('attributions: strong ones name an address or open like a reply header with a date', () => {
  assert.deepEqual(attributionAt(['On Mon, Jan 8, 2024 at 4:12 PM A <a@x.example> wrote:'], 0), { start: 0, end: 0, strong: true });
  assert.deepEqual(attributionAt(['On 1/8/24 11:02 PM, Priya Raman wrote:'], 0), { start: 0, end: 0, strong: true });
  assert.equal(attributionAt(['In 2023 Bob wrote:'], 0)?.strong, false);
  assert.equal(attributionAt(['My colleague wrote:'], 0), null);
  assert.equal(attributionAt(['On Monday the team wrote:'], 0), null);
  assert.deepEqual(attributionAt(['On Mon, Jan 8, 2024 at 4:12 PM A <a@x.example>', 'wrote:'], 0), { start: 0, end: 1, strong: true });
  assert.equal(attributionAt(['Thanks for the update', 'wrote: 1 <a@b.example>'], 0), null);
  assert.equal(attributionAt(['x'.repeat(500) + ' 1 <a@b.example> wrote:'], 0), null);
  assert.deepEqual(attributionAt(['---- On Mon, 08 Jan 2024 10:15:02 +0530 Priya <p@x.example> wrote ---'], 0)?.strong, true);
});

test('generic attribution (unknown language) needs an address, a digit and a final colon', () => {
  assert.equal(genericAttributionEndingAt(['2024년 1월 8일 (월) 오후 3:20, 김민준 <m@x.example>님이 작성:'], 0), 0);
  assert.equal(genericAttributionEndingAt(['8 Oca 2024 Pzt, 10:15 tarihinde A <a@x.example>', 'şunu yazdı:'], 1), 0);
  assert.equal(genericAttributionEndingAt(['Here is what I found:'], 0), null);
});

test('Outlook header blocks need From plus two label lines including Sent/Date or Subject', () => {
  assert.deepEqual(headerBlockAt(['From: A <a@x.example>', 'Sent: Monday', 'To: B', 'Subject: RE: x', '', 'old'], 0), { start: 0, end: 3, subject: 'RE: x' });
  assert.deepEqual(headerBlockAt(['*From:* A', '*Sent:* Monday', '*To:* B', '*Subject:* x'], 0)?.end, 3);
  assert.equal(headerBlockAt(['From: A', 'To: B'], 0), null);
  assert.equal(headerBlockAt(['From: A', 'To: B', 'Cc: C'], 0), null);
  assert.equal(headerBlockAt(['From the team: hello', 'Sent: x', 'To: y'], 0), null);
});

test('forward markers and Original Message separators', () => {
  for (const m of ['---------- Forwarded message ---------', 'Begin forwarded message:', '-------- Weitergeleitete Nachricht --------', 'Anfang der weitergeleiteten Nachricht:', '-------- Message transféré --------', '---------- Wiadomość przekazana dalej ---------']) assert.ok(isForwardMarker(m), m);
  assert.ok(!isForwardMarker('I forwarded the message to Bob.'));
  for (const m of ['-----Original Message-----', '-------- Mensagem original --------', '-----Oorspronkelijk bericht-----', '-----元のメッセージ-----']) assert.ok(isOriginalMessageSeparator(m), m);
});

test('forward or reply: the message subject decides first, then the quoted Subject line', () => {
  const block = { start: 0, end: 3, subject: 'FW: Terms' };
  assert.equal(isForwardBlock(block, 'RE: FW: Terms'), false);
  assert.equal(isForwardBlock({ ...block, subject: 'RE: Terms' }, 'FW: RE: Terms'), true);
  for (const s of ['Fwd: x', 'WG: x', 'TR: x', 'RV: x', 'I: x', 'VS: x', 'Doorst: x', 'PD: x', 'ENC: x', '转发: x']) assert.equal(isForwardBlock(null, s), true, s);
  for (const s of ['Re: x', 'AW: x', 'SV: x', 'R: x', 'Odp: x', '回复: x']) assert.equal(isForwardBlock(block, s), false, s);
  assert.equal(isForwardBlock(block, 'Contract'), true);
  assert.equal(isForwardBlock(null, null), false);
});
