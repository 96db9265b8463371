// The inbound listener as `npm start` runs it (startMailmux): it listens on MAILMUX_SMTP_PORT,
// makes and keeps a self-signed certificate in the data folder (or serves the configured one),
// delivers, and on shutdown tells idle sessions 421 without waiting for them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.ts';
import { startMailmux, type RunningMailmux } from '../../src/app/app.ts';
import { silentLogger } from '../../src/services/context.ts';
import { loadTlsMaterial } from '../../src/protocols/smtp/tls.ts';
import { describeEachBackend, type Backend } from '../helpers/backends.ts';
import { buildMessage } from '../helpers/mail.ts';
import { DnsFixture } from '../helpers/management.ts';
import { mailer, SmtpClient } from '../helpers/smtp.ts';

type Provisioned = Awaited<ReturnType<Backend['provision']>>;

function env(db: Provisioned, dns: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    MAILMUX_DATA_DIR: db.dataDir,
    ...(db.databaseUrl ? { MAILMUX_DATABASE_URL: db.databaseUrl } : {}),
    MAILMUX_HTTP_PORT: '0',
    MAILMUX_SMTP_PORT: '0',
    MAILMUX_SUBMISSION_PORT: '0',
    MAILMUX_SUBMISSIONS_PORT: '0',
    MAILMUX_HOSTNAME: 'mx.mailmux.test',
    MAILMUX_DEFAULT_DOMAIN: 'agents.mailmux.test',
    MAILMUX_DNS_SERVERS: dns,
    MAILMUX_LOG_LEVEL: 'silent',
    ...extra,
  };
}

/** STARTTLS by hand, returning the fingerprint of the certificate the server presented. */
async function presentedCertificate(port: number): Promise<string> {
  const { client } = await SmtpClient.connect(port);
  await client.command('EHLO client.example');
  const secure = await client.startTls('mx.mailmux.test');
  const fingerprint = secure.getPeerX509Certificate()?.fingerprint256 ?? '';
  secure.destroy();
  return fingerprint;
}

describeEachBackend('smtp listener started by startMailmux', (backend) => {
  let db: Provisioned;
  let dns: DnsFixture;
  let running: RunningMailmux;
  before(async () => {
    db = await backend.provision();
    dns = new DnsFixture();
    await dns.start();
    running = await startMailmux(loadConfig(env(db, dns.address)), { log: silentLogger, ...(db.pgSchema ? { pgSchema: db.pgSchema } : {}) });
  });
  after(async () => {
    await dns.stop();
    await db.drop();
  });

  test('listens, delivers over STARTTLS with a self-signed certificate kept in the data folder', async () => {
    assert.ok(running.smtpPort > 0);
    const keyFile = join(db.dataDir, 'tls', 'self-signed.key.pem');
    const certFile = join(db.dataDir, 'tls', 'self-signed.cert.pem');
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    const res = await fetch(`${running.httpUrl}/api/v1/mailboxes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${running.initialRootKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'agent@agents.mailmux.test' }),
    });
    assert.equal(res.status, 201);
    const mailboxId = ((await res.json()) as { data: { mailbox: { id: string } } }).data.mailbox.id;

    const transport = mailer(running.smtpPort, 'require');
    const info = await transport.sendMail({ envelope: { from: 'a@example.org', to: ['agent@agents.mailmux.test'] }, raw: await buildMessage({ subject: 'via npm start' }) });
    transport.close();
    assert.deepEqual(info.accepted, ['agent@agents.mailmux.test']);
    const rows = await running.services.store.messages.idsForMailbox(mailboxId, 10);
    assert.deepEqual(rows.map((r) => r.subject), ['via npm start']);

    // The presented certificate is the stored one, and a second load reuses it.
    const stored = new X509Certificate((await loadTlsMaterial(running.services.config)).cert);
    assert.equal(await presentedCertificate(running.smtpPort), stored.fingerprint256);
    const again = await loadTlsMaterial(running.services.config);
    assert.equal(new X509Certificate(again.cert).fingerprint256, stored.fingerprint256);
    assert.ok(stored.checkHost('mx.mailmux.test'));
    assert.ok(statSync(certFile).size > 0);
  });

  test('close() tells an idle session 421 and does not wait for it', async () => {
    const { client } = await SmtpClient.connect(running.smtpPort);
    await client.command('EHLO client.example');
    const started = Date.now();
    const closing = running.close();
    const reply = await client.reply();
    assert.match(reply.last, /^421 4\.3\.2 /);
    await closing;
    assert.ok(Date.now() - started < 5000);
    await client.closed;
  });
});

test('a configured certificate is served instead of the self-signed one', async () => {
  const [backend] = (await import('../helpers/backends.ts')).backends();
  const db = await backend!.provision();
  const dns = new DnsFixture();
  await dns.start();
  // Any valid pair will do: make one in another folder and point the configuration at it.
  const other = await loadTlsMaterial(loadConfig({ MAILMUX_DATA_DIR: join(db.dataDir, 'elsewhere'), MAILMUX_HOSTNAME: 'mx.configured.test' }));
  const certFile = join(db.dataDir, 'cert.pem');
  const keyFile = join(db.dataDir, 'key.pem');
  writeFileSync(certFile, other.cert);
  writeFileSync(keyFile, other.key);
  const config = loadConfig(env(db, dns.address, { MAILMUX_TLS_CERT_FILE: certFile, MAILMUX_TLS_KEY_FILE: keyFile }));
  const material = await loadTlsMaterial(config);
  assert.equal(material.selfSigned, false);
  const running = await startMailmux(config, { log: silentLogger, ...(db.pgSchema ? { pgSchema: db.pgSchema } : {}) });
  try {
    assert.equal(await presentedCertificate(running.smtpPort), new X509Certificate(other.cert).fingerprint256);
  } finally {
    await running.close();
    await dns.stop();
    await db.drop();
  }
});
