// Inspection of inbound mail in worker threads (src/protocols/smtp/inspect.ts): a worker gives
// exactly what the event loop gives (verdicts, stored bytes, parse), hostile MIME included; a
// thread that dies fails its messages, which the listener then inspects on the event loop; and
// with MAILMUX_SMTP_INSPECT_WORKERS=0 the listener authenticates and stores mail as before.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { dkimSign } from 'mailauth';
import { InspectPool, inspectMessage, resolverFor, type InspectTask } from '../../src/protocols/smtp/inspect.ts';
import { DnsFixture } from '../helpers/management.ts';
import { describeEachBackend } from '../helpers/backends.ts';
import { buildMessage, createMailbox } from '../helpers/mail.ts';
import { publishTxt, startSmtpRig, storedMessages, storedRaw, transact, type SmtpRig } from '../helpers/smtp.ts';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PRIVATE_PEM = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const PUBLIC_B64 = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');

async function signed(raw: Buffer): Promise<Buffer> {
  const key = { signingDomain: 'good.example', selector: 'mail', privateKey: PRIVATE_PEM, algorithm: 'rsa-sha256', canonicalization: 'relaxed/relaxed' };
  const result = await dkimSign(raw, { ...key, signatureData: [key] });
  return Buffer.concat([Buffer.from(result.signatures), raw]);
}

test('a worker thread inspects exactly as the event loop does', async () => {
  const dns = new DnsFixture();
  const address = await dns.start();
  publishTxt(dns, 'good.example', 'v=spf1 ip4:127.0.0.1 -all');
  publishTxt(dns, 'mail._domainkey.good.example', `v=DKIM1; k=rsa; p=${PUBLIC_B64}`);
  publishTxt(dns, '_dmarc.good.example', 'v=DMARC1; p=reject');
  const pool = new InspectPool(1);
  try {
    const messages = [
      await signed(await buildMessage({ from: 'News <news@good.example>', to: 'a@x.test', subject: 'Signed', text: 'hello', attachments: [{ filename: 'a.txt', content: 'abc' }] })),
      // Hostile: a forged Authentication-Results in our name, a broken boundary, 8-bit header bytes.
      Buffer.concat([
        Buffer.from('Authentication-Results: mx.inspect.test; dkim=pass\r\nFrom: x@lax.example\r\nSubject: caf'),
        Buffer.from([0xe9, 0xff]),
        Buffer.from('\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@not base64\r\n--b'),
      ]),
      Buffer.alloc(0),
    ];
    for (const original of messages) {
      const task: InspectTask = { original, ip: '127.0.0.1', helo: 'client.test', sender: 'bounces@good.example', authservId: 'mx.inspect.test', received: 'Received: from client.test ([127.0.0.1])\r\n\tby mx.inspect.test; Mon, 23 Nov 2026 10:00:00 +0000' };
      const here = await inspectMessage(task, resolverFor([address]));
      const there = await pool.run(task, [address]);
      assert.ok(Buffer.isBuffer(there.raw));
      assert.ok(there.raw.equals(here.raw), 'same stored bytes');
      assert.deepEqual(there.parsed, here.parsed);
      assert.deepEqual(there.auth, here.auth);
      assert.equal(there.authError, here.authError);
      assert.doesNotMatch(there.raw.toString('latin1'), /mx\.inspect\.test; dkim=pass/);
    }
    const first = await pool.run({ original: messages[0]!, ip: '127.0.0.1', helo: 'client.test', sender: 'bounces@good.example', authservId: 'mx.inspect.test', received: 'Received: x' }, [address]);
    assert.equal(first.auth.dkim, 'pass');
    assert.equal(first.auth.spf, 'pass');
    assert.equal(first.auth.dmarc.result, 'pass');
  } finally {
    await pool.close();
    await dns.stop();
  }
});

test('a thread that dies fails its pending messages; the next message gets a new thread', async () => {
  const pool = new InspectPool(1);
  const dns = new DnsFixture();
  const address = await dns.start();
  try {
    const task: InspectTask = { original: Buffer.from('Subject: x\r\n\r\nbody'), ip: '127.0.0.1', helo: 'h', sender: '', authservId: 'mx.test', received: 'Received: x' };
    // No DNS server answers on this port: authentication waits for its timeout, so the task is pending when the thread goes.
    const pending = pool.run(task, ['127.0.0.1:9']);
    await new Promise((r) => setTimeout(r, 50));
    await pool.close();
    await assert.rejects(pending, /exited/);
    const again = await pool.run(task, [address]);
    assert.equal(again.parsed.subject, 'x');
    assert.equal(again.auth.spf, 'none');
  } finally {
    await pool.close();
    await dns.stop();
  }
});

describeEachBackend('smtp inbound without inspection workers', (backend) => {
  let rig: SmtpRig;
  before(async () => {
    rig = await startSmtpRig(backend, { MAILMUX_SMTP_INSPECT_WORKERS: '0' });
    publishTxt(rig.dns, 'good.example', 'v=spf1 ip4:127.0.0.1 -all');
    publishTxt(rig.dns, 'mail._domainkey.good.example', `v=DKIM1; k=rsa; p=${PUBLIC_B64}`);
    publishTxt(rig.dns, '_dmarc.good.example', 'v=DMARC1; p=reject');
  });
  after(async () => rig.close());

  test('mail is authenticated on the event loop and stored with its trace headers', async () => {
    const agent = await createMailbox(rig.app, 'noworkers');
    const raw = await signed(await buildMessage({ from: 'News <news@good.example>', to: agent.email, subject: 'On the loop' }));
    const r = await transact(rig.port, 'bounces@good.example', [agent.email], raw);
    assert.equal(r.data?.code, 250, r.data?.text);
    const row = (await storedMessages(rig.app, agent.id)).find((m) => m.subject === 'On the loop');
    assert.ok(row);
    const stored = await storedRaw(rig.app, row);
    assert.match(stored, /^Authentication-Results: [^\r\n]*(\r\n[ \t][^\r\n]*)*dkim=pass/);
    assert.match(stored, /\r\nReceived: from /);
    assert.ok(stored.endsWith(raw.toString('utf8')));
  });
});
