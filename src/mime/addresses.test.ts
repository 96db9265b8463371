import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isValidDomain, isValidEmail, stripPlusTag } from './addresses.ts';

test('domains must be lowercase-able FQDNs', () => {
  for (const ok of ['acme.com', 'mail.acme.co.uk', 'xn--bcher-kva.example', 'a-b.io']) assert.equal(isValidDomain(ok), true, ok);
  for (const bad of ['localhost', 'https://acme.com', '-acme.com', 'acme-.com', 'acme..com', 'acme.com.', '1.2.3.4', 'a'.repeat(64) + '.com', 'ac me.com']) {
    assert.equal(isValidDomain(bad), false, bad);
  }
});

test('email syntax follows RFC 5321 dot-atoms and length limits', () => {
  assert.equal(isValidEmail('agent@acme.com'), true);
  assert.equal(isValidEmail('first.last+tag@acme.com'), true);
  assert.equal(isValidEmail('a..b@acme.com'), false);
  assert.equal(isValidEmail('@acme.com'), false);
  assert.equal(isValidEmail('agent@'), false);
  assert.equal(isValidEmail(`${'x'.repeat(65)}@acme.com`), false);
  assert.equal(isValidEmail('agent@localhost'), false);
});

test('plus tags are stripped for delivery', () => {
  assert.equal(stripPlusTag('agent+news@acme.com'), 'agent@acme.com');
  assert.equal(stripPlusTag('agent@acme.com'), 'agent@acme.com');
  assert.equal(stripPlusTag('+x@acme.com'), '+x@acme.com');
});
