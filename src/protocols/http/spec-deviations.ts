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
// - SSE (GET /mailbox/events, API-MAP §6.7): heartbeats are SSE comment lines (`: ping`), which
//   EventSource clients ignore, every `ping` seconds (default 25). `sync_required` is sent as
//   `event: sync_required` with no `id:` line and a MailboxRealtimeEvent whose `message` is null
//   (MailboxRealtimeMessage is nullable) and other per-message fields null/empty; the stream then
//   stays open and live. A Last-Event-ID the event log does not hold for this mailbox (expired past
//   MAILMUX_EVENT_RETENTION_HOURS, unknown, or another mailbox's) gets sync_required. Received
//   events carry `text` and `html` each capped at 16,384 UTF-8 bytes (`max_bytes`); attachment
//   links are minted when the event is sent, so replayed events have working links too. The
//   stream cap (429) counts streams per credential in each process. A stream whose key is revoked
//   or whose mailbox is suspended or deleted is closed within 5 s.
// - Submissions (extension): PATCH /mailbox/submissions/{id} with `{"undo_status":"canceled"}`
//   cancels a submission whose undo window (MAILMUX_SEND_UNDO_SECONDS) is still open; no recipient
//   is attempted, the delivery log turns `failed` with the reason. After send_at it is 409.
// - Webhooks: a non-https URL, an unknown event type and an empty event_types list are 422
//   validation_error as the operation descriptions say, although the schemas (format, enum,
//   minItems) would make them 400; a filters.mailbox_ids entry that is not a mailbox of the team is
//   422 too. A team holds at most MAILMUX_MAX_WEBHOOKS_PER_TEAM webhooks (409 limit_exceeded).
// - Webhook secrets are signing keys and are stored as is (like DKIM private keys), so an
//   Idempotency-Key replay of POST /webhooks or /webhooks/{id}/rotate-secret returns the original
//   response, secret included, as the rotate-secret description requires; after a later rotation
//   that replayed secret no longer verifies.
// - Webhook retries (API-MAP §6.16): 8 attempts, waiting 30 s, 2 min, 10 min, 30 min, 1 h, 4 h and
//   18 h between them (about 24 h). Non-2xx, timeouts (MAILMUX_WEBHOOK_TIMEOUT_SECONDS) and network
//   errors are `retrying`, the 8th failure is `failed`; a destination the SSRF guard refuses is
//   `permanent_failure` (not retried). Either marks the webhook failing: it then gets no new events
//   (except sendmux.test, to check the endpoint) and pending retries of other events are dropped,
//   until `enabled` goes false -> true (true -> true leaves it failing). Disabled webhooks get
//   nothing, tests included. Redirects are not followed (a 3xx is a non-2xx answer).
// - Webhook mailbox filters apply to every event type: an event without a mailbox (outbound
//   delivery events sent without one) reaches only team-wide webhooks. sendmux.test ignores them.
// - Delivery attempts (and their payloads) are kept 7 days from the attempt; `error_message` is one
//   of destination_not_allowed, dns_error, timeout, connection_refused, connection_reset,
//   tls_error, network_error; `response_body` is the first 1 KiB of the answer.
// - Sending (POST /mailbox/messages/send): the body has no reply field, so a reply names the message
//   it answers in `custom_headers["In-Reply-To"]`, as a msg_ id of this mailbox (unknown: 422) or an
//   RFC Message-ID; References become the parent's References plus its Message-ID and the Sent copy
//   joins the parent's thread. The subject is sent as given (no automatic "Re:"). `custom_headers`
//   may not set the headers the composer owns (From, To, Cc, Bcc, Subject, Date, Message-ID,
//   MIME-Version, Content-*, Sender, Return-Path, Received, DKIM-Signature, Reply-To): 400. `from`
//   may only name the mailbox's own address (422 validation_error: the operation lists no 403).
//   To + Cc + Bcc are capped at 50 like the Sending API (422). Inline attachments over 5,000,000
//   decoded bytes, and a composed message over 26,214,400 bytes, are 413. The text signature is
//   appended after a "-- " delimiter line; the HTML signature before </body> (or at the end).
// - Mailbox uploads (blob_…) and Sending uploads (att_…) can be used by a send for 24 hours; a
//   presigned upload URL / token lives 15 minutes. The mailbox presigned PUT (not in the spec)
//   answers 200 with MailboxAttachmentUploadResult; a wrong token is 401, an unknown or expired
//   upload 404, a Content-Type or Content-Length other than the declared ones 400 (checked before
//   the body is read), a repeat with the same bytes returns the same blob and other bytes 409.
// - Sending API: served on the same server under /api/v1 (its paths do not collide with the app
//   API's), GET /api/v1/openapi.json without a key. Schema failures of the body or the query
//   (a missing `filename` included) are 422 validation_error; malformed JSON stays 400. `from` must
//   be the key's mailbox address and `return_path` must be on its domain, else 403
//   insufficient_permissions. Attachment types are checked by filename extension (images,
//   documents, spreadsheets, presentations, text, calendar, contacts; 422 otherwise) and binary
//   formats by their leading bytes (a .pdf must start with %PDF-; 422 otherwise). Batch: each message is validated on its own (failed items carry ErrorDetail with
//   `messages.<i>.` field paths); when none is queued the batch answers 422 if every failure was a
//   validation error, the transient error (503) if every failure was transient, otherwise 200.
//   The delegated PUT checks its token (401), intent (404) and Content-Length (413 when it is not
//   the declared size) before reading the body, then the optional sha256 (422).
// - Submissions (JMAP EmailSubmission): `email_id` (and the email_ids filter and sort) is the msg_
//   id of the Sent copy, as in JMAP, not the Sending API's eml_ id; `delivered` uses JMAP's values:
//   queued (queued or deferred), yes, no, unknown (the connection was lost after the end of data, so
//   acceptance is uncertain and Mailmux does not resend); `displayed` is always unknown and
//   dsn_blob_ids / mdn_blob_ids are empty (a bounce is a message in the sender's inbox).
//   undo_status is pending until send_at (created + MAILMUX_SEND_UNDO_SECONDS, default 0) and
//   final after, or canceled through the PATCH extension above.
// - Outbound routing (send_scope): `all` uses the team's active sending accounts, and with none it
//   delivers directly to the recipients' MX (the hosted product's shared SES account does not
//   exist here); `providers` only the listed active accounts (none active: the message is
//   rejected: message.rejected, log status `rejected`, a DSN); `group` always rejects (Mailmux has
//   no delivery groups). Recipients on hosted mailboxes are always delivered locally. Accounts are
//   tried in a weighted random order by `percentage`; a connection error or 4xx moves to the next,
//   an AUTH failure marks the account `error` and moves on (and if none is left the message waits
//   and retries), an uncertain end of data never does. Quotas (per second/minute/hour/day; a
//   min..max range counts with its max) are counted per process in fixed windows; an account at
//   its quota is skipped, and when all are, the message is deferred and retried.
// - Delivery logs: one dlog_ per sent message (all its recipients), `pending` until every recipient
//   is final, then `sent` when at least one was accepted (the others counted as rejected),
//   `rejected` when no route existed, else `failed`; `recipients` is null while pending;
//   `sent_from_email` is null (no From rewriting). /emails/metrics counts logs by created_at;
//   `comparison` is the window of the same length just before; change_pct is 100 when the
//   previous count was 0 and the current is not.
// - Outbound events: message.delivered, message.delivery_delayed (once, at the first deferral, with
//   delay_expires_at = created + MAILMUX_SEND_RETRY_HOURS), message.bounced (bounce_type Permanent
//   for 5xx, Transient when retries ran out, Undetermined for an uncertain end of data) and
//   message.rejected, one event per outcome kind and attempt listing its recipients; data.sender
//   is the From address and data.message_id the RFC 5322 Message-ID (message_id_kind rfc5322).
// - Sync state tokens (API-MAP §2.9, §6.9): a since state older than the retained change log
//   (MAILMUX_CHANGE_RETENTION_DAYS) gets, for every resource alike (messages, folders, threads,
//   submissions, identities, quotas; legacy and typed /changes), a 200 MailboxChanges with
//   `sync_required: true`, empty arrays and the current `new_state` (the changelog's quota
//   behaviour, which API-MAP calls preferred): refetch the list, then continue from new_state. A
//   token that is malformed or that this server never issued (a state newer than the resource's
//   newest change) is 400 invalid_parameter "Invalid sync state". query-changes has no
//   sync_required field, so an expired, malformed or foreign query state (another filter or sort,
//   or a resource state) is 400 invalid_parameter, and the client re-queries. Omitting the state
//   answers `old_state` / `old_query_state` null with the current state and empty arrays.
// - /changes follows RFC 8620 §5.2: an object created and destroyed inside the window is left out;
//   one created and then updated is reported once, as created. `limit` counts ids (created +
//   updated + destroyed); a page that stops early has has_more true and its new_state continues.
//   Quota changes name the quota's public id (quota_…), folder changes folder ids (not roles).
// - query-changes follows RFC 8620 §5.6 with changed items reported as removed + added.
//   `limit` bounds `added`; ids that left the list (destroyed, moved out, no longer matching) are
//   all reported in `removed` on the page that first sees them, since their old position is
//   unknown. Pages (has_more) replace changed items in list order, so every `added` index is a
//   position in the final list; a page's new_query_state records how far it got and later pages
//   also take in writes made between pages. up_to_id applies only when the filter reads immutable
//   properties (not folder_id, keyword, not_keyword, is_unread), as RFC 8620 says; otherwise it is
//   ignored. Folder query-changes order folders by sort_order, then id (the list's order) and
//   remove every changed folder at once (a folder's sort_order can change). calculate_total counts
//   the filtered list; folder query-changes return total null.
// - Change-log retention never moves a state token back: the newest change of each (mailbox,
//   type) is always kept, and how far each was purged is recorded, so only states below that
//   point answer sync_required. A deleted mailbox's change log goes with its data.

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
        // The inline member describes this schema itself: keep its nullability (MailboxRealtimeMessage is nullable).
        const own = members.find((m) => m.$ref === undefined);
        obj.type = Array.isArray(own?.type) && (own.type as string[]).includes('null') ? ['object', 'null'] : 'object';
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
    why: 'A nullable enum (`type: [string, null]` with an `enum` that omits null, e.g. MailboxRealtimeEvent.message_id_kind) rejects the null its type allows; read null as allowed',
    apply: (doc) => {
      const visit = (node: unknown): void => {
        if (Array.isArray(node)) return node.forEach(visit);
        if (node === null || typeof node !== 'object') return;
        const obj = node as Json;
        if (Array.isArray(obj.enum) && Array.isArray(obj.type) && (obj.type as unknown[]).includes('null') && !(obj.enum as unknown[]).includes(null)) (obj.enum as unknown[]).push(null);
        for (const value of Object.values(obj)) visit(value);
      };
      visit(doc);
    },
  },
  {
    why: 'API-MAP §6.3: MailboxAddress.name is required (nullable), yet every docs example of POST /mailbox/messages/send omits it; on the send body it is optional',
    apply: (doc) => {
      const all = schemas(doc);
      const send = all.SendMailboxMessageBody;
      if (!all.MailboxAddress || !send) return;
      all.MailboxAddressInput = { ...structuredClone(all.MailboxAddress), required: ['email'] };
      const text = JSON.stringify(send).replaceAll('"#/components/schemas/MailboxAddress"', '"#/components/schemas/MailboxAddressInput"');
      all.SendMailboxMessageBody = JSON.parse(text) as Json;
    },
  },
  {
    why: 'Extension (issue #4): PATCH /mailbox/submissions/{id} with {"undo_status":"canceled"} cancels inside the undo window (JMAP EmailSubmission/set); the spec has no cancel operation although it has undo_status canceled',
    apply: (doc) => {
      const item = (doc.paths as Record<string, Json> | undefined)?.['/mailbox/submissions/{submission_id}'];
      const get = item?.get as Json | undefined;
      if (!item || !get || item.patch) return;
      const responses = get.responses as Record<string, Json>;
      const notFound = responses['404'];
      const params = (get.parameters as Json[]).filter((p) => p.name !== 'If-None-Match');
      item.patch = {
        operationId: 'mailboxCancelSubmission',
        summary: 'Cancel a submission inside its undo window (Mailmux extension)',
        tags: get.tags,
        security: get.security,
        parameters: [...params, { in: 'header', name: 'If-Match', required: false, schema: { type: 'string' } }],
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { type: 'object', additionalProperties: false, required: ['undo_status'], properties: { undo_status: { type: 'string', enum: ['canceled'] } } } } },
        },
        responses: {
          '200': structuredClone(responses['200']),
          '400': { ...structuredClone(notFound), description: 'Invalid request body' },
          '404': structuredClone(notFound),
          '409': { ...structuredClone(notFound), description: 'The undo window is over, or If-Match does not match' },
        },
      };
    },
  },
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
