// Public identifiers: a prefix and 24 lowercase alphanumerics (the Sending API's ^<prefix>_[a-z0-9]{24}$),
// ordered by creation time (newId), and the secret formats of API keys. Randomness comes from the CSPRNG with rejection sampling (no bias).
import { randomBytes, hash } from 'node:crypto';

const LOWER = 'abcdefghijklmnopqrstuvwxyz0123456789';
const MIXED = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** CSPRNG bytes drawn in blocks: one getrandom per 4 KiB instead of one per id (ids are made per request). */
const POOL_SIZE = 4096;
let pool = Buffer.alloc(0);
let poolAt = 0;

function randomByte(): number {
  if (poolAt >= pool.length) {
    pool = randomBytes(POOL_SIZE);
    poolAt = 0;
  }
  return pool[poolAt++]!;
}

export function randomString(length: number, alphabet: string = LOWER): string {
  const limit = 256 - (256 % alphabet.length);
  let out = '';
  while (out.length < length) {
    const byte = randomByte();
    if (byte < limit) out += alphabet[byte % alphabet.length];
  }
  return out;
}

export const ID_PREFIXES = [
  'team', 'mbx', 'mdom', 'smx', 'req', 'dprov', 'dgrp', 'dlog', 'ilog', 'whk', 'whda', 'evt', 'eml', 'att',
  'upl', 'blob', 'attref', 'msg', 'thr', 'sub', 'id', 'quota', 'fld',
] as const;
export type IdPrefix = (typeof ID_PREFIXES)[number];

/**
 * An id starts with its creation time (milliseconds since 1970, 9 base-36 digits: fixed width, so
 * ids sort by creation time until the year 5188) and ends with 15 random characters (77 bits).
 * Rows made one after the other are then neighbours in every index keyed by their id: a batch of
 * new messages, threads or events adds to the last leaf page of each such index, where random ids
 * dirtied one page per row anywhere in the index (on SQLite, a WAL frame of 4 KiB each). Ids are
 * names, not secrets: every read checks that the object belongs to the caller.
 */
export function newId(prefix: IdPrefix): string {
  return `${prefix}_${Date.now().toString(36).padStart(9, '0')}${randomString(15)}`;
}

export function hasPrefix(id: string, prefix: IdPrefix): boolean {
  return id.startsWith(`${prefix}_`) && id.length > prefix.length + 1;
}

/** Secret kinds: root (team, Management API) and mailbox (Mailbox API, Sending API, SMTP, IMAP). */
export const SECRET_PREFIX = { root: 'smx_root_', mailbox: 'smx_mbx_' } as const;
export type SecretKind = keyof typeof SECRET_PREFIX;

export function newSecret(kind: SecretKind): string {
  return SECRET_PREFIX[kind] + randomString(40, MIXED);
}

/**
 * API secrets are 238-bit random strings, so a single SHA-256 is the right storage hash: a slow
 * password hash protects low-entropy secrets and would only add latency to every request here.
 */
export function hashSecret(secret: string): string {
  // crypto.hash: one call, no Hash object (every authenticated request hashes its key).
  return hash('sha256', secret, 'hex');
}

export function secretKindOf(secret: string): SecretKind | null {
  if (secret.startsWith(SECRET_PREFIX.root)) return 'root';
  if (secret.startsWith(SECRET_PREFIX.mailbox)) return 'mailbox';
  return null;
}
