// Address and domain syntax (RFC 5321 mailbox, RFC 1035 host names), normalisation and
// plus-addressing. Pure functions, no I/O.

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
// RFC 5321 dot-atom local part (quoted local parts are not accepted for hosted mailboxes).
const LOCAL_PART = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/i;

/** A fully qualified domain name: at least two labels, letters/digits/hyphens, not all-numeric TLD. */
export function isValidDomain(domain: string): boolean {
  if (domain.length < 3 || domain.length > 253) return false;
  const labels = domain.split('.');
  if (labels.length < 2) return false;
  if (!labels.every((l) => LABEL.test(l))) return false;
  return !/^[0-9]+$/.test(labels[labels.length - 1] ?? '');
}

export function splitAddress(address: string): { local: string; domain: string } | null {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return null;
  return { local: address.slice(0, at), domain: address.slice(at + 1) };
}

/** RFC 5321 limits: local part ≤ 64 octets, whole path ≤ 254. */
export function isValidEmail(address: string): boolean {
  if (address.length > 254) return false;
  const parts = splitAddress(address);
  if (!parts || parts.local.length > 64) return false;
  return LOCAL_PART.test(parts.local) && isValidDomain(parts.domain.toLowerCase());
}

export function normaliseEmail(address: string): string {
  return address.trim().toLowerCase();
}

/** local+tag@domain delivers to local@domain. */
export function stripPlusTag(address: string): string {
  const parts = splitAddress(address);
  if (!parts) return address;
  const plus = parts.local.indexOf('+');
  return plus > 0 ? `${parts.local.slice(0, plus)}@${parts.domain}` : address;
}
