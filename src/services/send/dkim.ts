// DKIM signing of outbound mail with the sending domain's key (mailauth's signer, relaxed/relaxed,
// rsa-sha256, mailauth's default header list). The signing domain is the From domain when Mailmux holds its key, else nothing is signed.
import type * as Mailauth from 'mailauth';
import type { DomainRow } from '../../store/index.ts';

let mailauth: Promise<typeof Mailauth> | null = null;
/** mailauth is large: load it with the first signature, not at start. */
const loadMailauth = (): Promise<typeof Mailauth> => (mailauth ??= import('mailauth'));

/** Returns the message with a DKIM-Signature prepended (or unchanged when signing failed). */
export async function signMessage(raw: Buffer, domain: Pick<DomainRow, 'domain' | 'dkim_selector' | 'dkim_private_key'>): Promise<{ message: Buffer; signed: boolean }> {
  const { dkimSign } = await loadMailauth();
  const result = await dkimSign(raw, {
    canonicalization: 'relaxed/relaxed',
    algorithm: 'rsa-sha256',
    signatureData: [{ signingDomain: domain.domain, selector: domain.dkim_selector, privateKey: domain.dkim_private_key, canonicalization: 'relaxed/relaxed', algorithm: 'rsa-sha256' }],
  } as unknown as Parameters<typeof Mailauth.dkimSign>[1]);
  if (!result.signatures) return { message: raw, signed: false };
  return { message: Buffer.concat([Buffer.from(result.signatures, 'utf8'), raw]), signed: true };
}

/** Removes Bcc fields from the header block: they must never reach a recipient. */
export function stripBcc(raw: Buffer): Buffer {
  const text = raw.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const head = end < 0 ? text : text.slice(0, end);
  if (!/^bcc:/im.test(head)) return raw;
  const lines = head.split(/(?<=\n)/);
  const kept: string[] = [];
  let skipping = false;
  for (const line of lines) {
    if (/^[ \t]/.test(line) && skipping) continue;
    skipping = /^bcc:/i.test(line);
    if (!skipping) kept.push(line);
  }
  let newHead = kept.join('');
  if (end >= 0 && !/\n$/.test(newHead) && newHead.length > 0) newHead = newHead.replace(/\r?\n?$/, '');
  return Buffer.from(end < 0 ? newHead : newHead + text.slice(end), 'latin1');
}
