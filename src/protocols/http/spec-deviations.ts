// Where Mailmux reads the published spec differently from its literal text, and why. This is the
// one place such choices are recorded (API-MAP §6 lists the contradictions); the patches below are
// applied to the OpenAPI documents before they validate requests (server) and responses (tests).
//
// Choices that are behaviour rather than schema:
// - Mailbox ids use `mbx_` everywhere, including Location headers (the spec's `mx_` example is a typo).
// - Filter sets: an allowlist or denylist with no rules is stored and returned as `off`, and a set's
//   rule types must agree with its mode (allow with allowlist, deny with denylist); a mailbox filter
//   replaces its domain's filter while its mode is not `off`.
// - DELETE /domains/{id} answers 409 while any mailbox that is not deleted (active or suspended)
//   still uses the domain, so no suspended mailbox is left without its domain.
// - PATCH /domains/{id} with `mode: "send_only"` (a downgrade) and PUT …/filters with more than
//   1000 rules are 422 validation_error as the operation descriptions say, although the request
//   schemas (enum of one, maxItems) would make them 400.
// - A key of a suspended mailbox gets 401 authentication_required (its credentials "stop working").
// - Mailbox names may not contain '+': local+tag@domain is plus-addressing and delivers to local@domain.
// - An Idempotency-Key replay of POST /mailboxes or POST /mailboxes/{id}/keys returns the original
//   status and body except the secret: `credential` is null (with a `warning` on mailbox create).
//   Secrets are shown once and stored only hashed, so the replay cache never holds one.
// - Mailbox API errors use only the statuses each operation lists: a lifecycle keyword ($draft) or
//   more than 50 keyword changes is 400 invalid_parameter on PATCH and batch-update (no 422 listed);
//   PATCH /mailbox/folders answers a name clash or a move under itself with 409 and a bad name or
//   parent with 400 (create, which lists 422, uses 422). `folder_id` also accepts a role name
//   (`inbox`, `spam`, …), as the docs' examples do.
// - Deleting a message that is already in Trash destroys it (as mail clients do); `permanent=true`
//   destroys from anywhere. A message GET with attachments answers 200 even on a matching
//   If-None-Match, so its download URLs are fresh (the spec allows this).
// - Idempotency for bodiless POSTs fingerprints method, path and query, so a key reused on another
//   resource id is a 409 idempotency_conflict.
// - Incoming logs (GET /inboxes/logs): IncomingLogItem has no status or reason and its event_type
//   knows only message.received / message.received.spam, and API-MAP §16 says refused mail is not
//   logged as billable inbound. So the API lists accepted deliveries only (one row per mailbox
//   stored to). Refused recipients (unknown, inactive mailbox, sender filter, quota, size, spam
//   reject) are still written to the incoming_logs table with status 'rejected' and the reason, but
//   with no team, so they never appear in a team's billing log; operators read them from the store
//   and the `smtp.rcpt_rejected` log events. Relay attempts for domains not hosted here are not
//   stored at all. `amount` / `unit_amount` are "0" and billing_bucket_start is received_at
//   truncated to the hour. A full date-time `to_date` includes that instant.

type Json = Record<string, unknown>;

export interface SpecPatch {
  why: string;
  apply(doc: Json): void;
}

function schemas(doc: Json): Record<string, Json> {
  return ((doc.components as Json | undefined)?.schemas ?? {}) as Record<string, Json>;
}

/**
 * `allOf: [{$ref: Base}, {properties…, additionalProperties: false}]` can never validate under
 * JSON Schema (the second member forbids the base's properties); the intent is a merge. Replace
 * such compositions with one object schema holding the union of properties and required names.
 */
function mergeClosedAllOf(doc: Json): void {
  const all = schemas(doc);
  const resolve = (s: Json): Json => {
    const ref = s.$ref;
    if (typeof ref === 'string' && ref.startsWith('#/components/schemas/')) return all[ref.slice(21)] ?? s;
    return s;
  };
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (node === null || typeof node !== 'object') return;
    const obj = node as Json;
    const members = obj.allOf as Json[] | undefined;
    if (Array.isArray(members) && members.some((m) => m.additionalProperties === false) && members.length > 1) {
      const resolved = members.map(resolve);
      if (resolved.every((m) => m.type === 'object' || (Array.isArray(m.type) && m.type.includes('object')) || m.properties !== undefined)) {
        const properties: Json = {};
        const required = new Set<string>();
        for (const m of resolved) {
          Object.assign(properties, (m.properties as Json | undefined) ?? {});
          for (const r of (m.required as string[] | undefined) ?? []) required.add(r);
        }
        delete obj.allOf;
        obj.type = 'object';
        obj.properties = properties;
        obj.required = [...required];
        obj.additionalProperties = false;
      }
    }
    for (const value of Object.values(obj)) visit(value);
  };
  visit(doc);
}

/** Adds a response (copied from one the operation already has, so it keeps the error schema) where missing. */
function addErrorResponse(doc: Json, status: string): void {
  for (const ops of Object.values((doc.paths ?? {}) as Record<string, Json>)) {
    for (const op of Object.values(ops) as Json[]) {
      const responses = op?.responses as Json | undefined;
      if (!responses || responses[status]) continue;
      const template = Object.entries(responses).find(([code, r]) => /^[45]/.test(code) && (r as Json).content)?.[1];
      if (template) responses[status] = structuredClone(template);
    }
  }
}

export const SPEC_PATCHES: readonly SpecPatch[] = [
  {
    why: 'Every authenticated operation can answer 401 (missing, invalid or revoked key) and 429 (rate limit, with Retry-After) as API-MAP §2.2/§2.6 say; the spec lists them on some operations only',
    apply: (doc) => {
      addErrorResponse(doc, '401');
      addErrorResponse(doc, '429');
    },
  },
  {
    why: 'An attachment Range starting past the end is 416 Range Not Satisfiable (RFC 9110 §15.5.17, with Content-Range: bytes */size); the spec lists only 400 for bad ranges, which Mailmux keeps for malformed ones',
    apply: (doc) => {
      const op = ((doc.paths as Json)['/mailbox/messages/{message_id}/attachments/{attachment_id}'] as Json | undefined)?.get as Json | undefined;
      const responses = op?.responses as Json | undefined;
      if (responses && responses['400']) responses['416'] = structuredClone(responses['400']);
    },
  },
  { why: 'API-MAP §6.5: allOf with additionalProperties:false members is unsatisfiable; read it as a merge', apply: mergeClosedAllOf },
  {
    why: 'API-MAP §6.6: docs put query_state / identity_state / thread content states in meta; ResponseMeta forbids extra keys',
    apply: (doc) => {
      const meta = schemas(doc).ResponseMeta;
      if (meta) meta.additionalProperties = true;
    },
  },
];

export function patchedSpec<T extends Json>(doc: T): T {
  const copy = structuredClone(doc);
  for (const patch of SPEC_PATCHES) patch.apply(copy);
  return copy;
}
