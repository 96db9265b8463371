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
/**
 * PostgreSQL: messages whose full-text vector (to_tsvector of subject, addresses and body) is made
 * at once, on connections of the pool, before they join an ingest batch. Each parse keeps a
 * server process busy for ~1.7 ms for a 10 KB message; 1, 2 and 4 received equally fast on two
 * cores, and a small number leaves the pool's connections (10) to the batches being written.
 */
export const SEARCH_VECTORS_IN_PARALLEL = 2;
/** A DNS lookup during verification gives up after this long and counts as a temporary failure. */
export const DNS_TIMEOUT_MS = 5000;
/** Local parts on the default domain that no team may take (RFC 2142 role accounts and the bounce sender). */
export const RESERVED_LOCAL_PARTS = [
  'postmaster', 'abuse', 'hostmaster', 'webmaster', 'mailer-daemon', 'root', 'noreply', 'no-reply', 'security',
] as const;
