import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMobileFooter, signatureStart } from './signatures.ts';

const start = (text: string): number => {
  const lines = text.split('\n');
  return signatureStart(lines, lines.length);
};

test('mobile footers need an app or device word, or a fixed phrase', () => {
  for (const l of ['Sent from my iPhone', 'Sent from Mail for Windows', 'Envoyé de mon iPad', 'Von meinem Samsung Galaxy Smartphone gesendet', 'Get Outlook for iOS', 'Outlook für iOS beziehen', 'iPhoneから送信', '发自我的iPhone']) assert.ok(isMobileFooter(l), l);
  for (const l of ['Sent from the accounting team', 'Sent you the invoice yesterday', 'Get well soon']) assert.ok(!isMobileFooter(l), l);
});

test('the "-- " delimiter needs a short block after it; a bare "--" a shorter one', () => {
  assert.equal(start('Text\n-- \nName'), 1);
  assert.equal(start('Text\n--\nName'), 1);
  assert.equal(start('Text\n--\n' + 'line\n'.repeat(20)), 23);
  assert.equal(start('Text\n-- \n' + 'line\n'.repeat(20)), 1);
});

test('sign-off: name kept, contact block dropped; prose or P.S. stops it', () => {
  assert.equal(start('Hi\n\nBest regards,\nAlice\nCEO | Acme\n+1 555 010 2040'), 4);
  assert.equal(start('Hi\n\nBest regards,\n\nAlice\nAcme Corp.\nwww.acme.example'), 5);
  assert.equal(start('Hi\n\nBest,\nAlice\nLet me know if anything in the plan is unclear to you.'), 5);
  assert.equal(start('Hi\n\nCheers,\nDan\nP.S. call me'), 5);
  assert.equal(start('Hi\n\nThanks,\nAlice'), 4);
});
