// The STARTTLS certificate: the configured PEM pair (MAILMUX_TLS_CERT_FILE / MAILMUX_TLS_KEY_FILE),
// or a self-signed one for MAILMUX_HOSTNAME made with `selfsigned` on first start and kept in
// <data dir>/tls/ so restarts (and the IMAP listener later) present the same certificate.
// Opportunistic STARTTLS between MTAs does not validate certificates, so self-signed is useful.
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Config } from '../../config/config.ts';

export interface TlsMaterial {
  key: string;
  cert: string;
  selfSigned: boolean;
}

/** How long a generated certificate lasts. */
export const SELF_SIGNED_VALIDITY_DAYS = 825;
/** A stored self-signed certificate this close to expiry is replaced at start. */
export const SELF_SIGNED_RENEW_DAYS = 30;
const DAY_MS = 86_400_000;

async function writeAtomically(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode });
  await rename(tmp, path);
}

function stillValid(certPem: string, now: number): boolean {
  try {
    return Date.parse(new X509Certificate(certPem).validTo) - now > SELF_SIGNED_RENEW_DAYS * DAY_MS;
  } catch {
    return false;
  }
}

async function selfSigned(config: Config, now: number): Promise<TlsMaterial> {
  const dir = join(config.dataDir, 'tls');
  const keyPath = join(dir, 'self-signed.key.pem');
  const certPath = join(dir, 'self-signed.cert.pem');
  if (existsSync(keyPath) && existsSync(certPath)) {
    const [key, cert] = await Promise.all([readFile(keyPath, 'utf8'), readFile(certPath, 'utf8')]);
    if (stillValid(cert, now)) return { key, cert, selfSigned: true };
  }
  const host = config.hostname;
  const altNames: { type: 2 | 7; value?: string; ip?: string }[] = [isIP(host) ? { type: 7, ip: host } : { type: 2, value: host }];
  if (host !== 'localhost') altNames.push({ type: 2, value: 'localhost' });
  altNames.push({ type: 7, ip: '127.0.0.1' });
  // Loaded only when a certificate has to be made: the library and its X.509 stack load slowly.
  const { generate } = await import('selfsigned');
  const pems = await generate([{ name: 'commonName', value: host }], {
    keySize: 2048,
    algorithm: 'sha256',
    notBeforeDate: new Date(now - DAY_MS),
    notAfterDate: new Date(now + SELF_SIGNED_VALIDITY_DAYS * DAY_MS),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeAtomically(keyPath, pems.private, 0o600);
  await writeAtomically(certPath, pems.cert, 0o644);
  return { key: pems.private, cert: pems.cert, selfSigned: true };
}

export async function loadTlsMaterial(config: Config, now: number = Date.now()): Promise<TlsMaterial> {
  if (config.tlsCertFile && config.tlsKeyFile) {
    const [key, cert] = await Promise.all([readFile(config.tlsKeyFile, 'utf8'), readFile(config.tlsCertFile, 'utf8')]);
    return { key, cert, selfSigned: false };
  }
  return selfSigned(config, now);
}
