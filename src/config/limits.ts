// Named limits with the reason for each. Values from the spec are marked (spec).

/** Rules in one sender-filter set (spec: SetFilterStateBody.rules maxItems). */
export const FILTER_RULES_MAX = 1000;
/** Page sizes (spec: limit 1..100, default 50; logs and deliveries default 25). */
export const LIST_LIMIT_MAX = 100;
export const LIST_LIMIT_DEFAULT = 50;
/**
 * Message summaries (JSON text) kept for list pages, per process (services/mail/summary-cache.ts):
 * ~0.7-1 KB each, so ~20 MB at most; enough for the newest pages of a few hundred busy mailboxes.
 */
export const SUMMARY_CACHE_MAX = 20_000;
/** Idempotency records live 24 h (spec: "Cached for 24h per (team, endpoint, key)"). */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
/** Idempotency-Key header length (spec: maxLength 255). */
export const IDEMPOTENCY_KEY_MAX = 255;
/** Mailbox quota tiers accepted on create and update (spec: 1 GB, 5 GB, 50 GB). */
export const QUOTA_TIERS = [1073741824, 5368709120, 53687091200] as const;
export const QUOTA_DEFAULT = 1073741824;
/** DKIM key size Mailmux generates per domain: 2048-bit RSA is what every receiver accepts. */
export const DKIM_RSA_BITS = 2048;
/** A DNS lookup during verification gives up after this long and counts as a temporary failure. */
export const DNS_TIMEOUT_MS = 5000;
/** Local parts on the default domain that no team may take (RFC 2142 role accounts and the bounce sender). */
export const RESERVED_LOCAL_PARTS = [
  'postmaster', 'abuse', 'hostmaster', 'webmaster', 'mailer-daemon', 'root', 'noreply', 'no-reply', 'security',
] as const;
