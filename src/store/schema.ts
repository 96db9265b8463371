// Row types of every table, as Kysely sees them. Timestamps are RFC 3339 strings; booleans are 0/1
// integers on both backends; JSON columns are text.
import type { Generated } from 'kysely';

export interface TeamsTable {
  id: string;
  name: string;
  created_at: string;
}

export interface ApiKeysTable {
  id: string;
  team_id: string;
  kind: 'root' | 'mailbox';
  mailbox_id: string | null;
  name: string | null;
  secret_hash: string;
  key_prefix: string;
  key_suffix: string;
  created_at: string;
  revoked_at: string | null;
}

export interface DomainsTable {
  id: string;
  team_id: string | null;
  domain: string;
  mode: 'send_only' | 'send_receive';
  is_default: number;
  verification_status: 'pending' | 'verified' | 'failed';
  verified_at: string | null;
  verify_token: string;
  dkim_selector: string;
  dkim_private_key: string;
  dkim_public_key: string;
  dkim_status: string;
  mail_from_status: string;
  identity_status: string;
  checked_at: string | null;
  fail_streak: number;
  deleting: number;
  created_at: string;
  updated_at: string;
}

export interface MailboxesTable {
  id: string;
  team_id: string;
  domain_id: string;
  email: string;
  display_name: string | null;
  quota_bytes: number | null;
  used_bytes: number;
  send_scope: string;
  status: 'active' | 'suspended' | 'deleted';
  cleanup_pending: number;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

export interface FilterSetsTable {
  owner_kind: 'mailbox' | 'domain';
  owner_id: string;
  mode: 'off' | 'allowlist' | 'denylist';
  rules: string;
  updated_at: string;
}

export interface IdempotencyTable {
  scope: string;
  key: string;
  fingerprint: string;
  state: 'in_flight' | 'done';
  status_code: number | null;
  response: string | null;
  created_at: string;
  expires_at: string;
}

export interface ChangesTable {
  change_id: Generated<number>;
  team_id: string | null;
  mailbox_id: string | null;
  type: string;
  object_id: string;
  kind: 'created' | 'updated' | 'destroyed';
  created_at: string;
}

export interface ChangeHorizonsTable {
  mailbox_id: string;
  type: string;
  purged_through: number;
}

export interface BlobsTable {
  sha256: string;
  size: number;
  data: Buffer;
}

export interface FoldersTable {
  id: string;
  mailbox_id: string;
  name: string;
  role: string | null;
  parent_id: string | null;
  sort_order: number | null;
  next_uid: number;
  uid_validity: number;
  created_at: string;
  updated_at: string;
  /** Counters kept by every message write (migration 009). */
  total_messages: number;
  unread_messages: number;
}

export interface ThreadsTable {
  id: string;
  mailbox_id: string;
  subject_key: string;
  subject: string | null;
  last_received_at: string;
  created_at: string;
  /** Counters kept by every message write (migration 009). */
  message_count: number;
  unread_count: number;
  /** Messages of the thread that have attachments. */
  attachment_count: number;
}

/** Messages and unread messages of a mailbox, kept by every message write (migration 009). */
export interface MailboxMessageCountsTable {
  mailbox_id: string;
  total: number;
  unread: number;
}

/** How many of a thread's messages are in each folder (rows with n > 0 only; migration 009). */
export interface ThreadFoldersTable {
  thread_id: string;
  folder_id: string;
  mailbox_id: string;
  n: number;
}

/**
 * The index row of a message: what lists, filters and sorts read. Its large, immutable parts (stored
 * headers, IMAP structures, bodies) live in message_contents (migration 010), so a list page reads
 * small rows; MessageRow (repos/messages.ts) is the two together.
 */
export interface MessagesTable {
  id: string;
  mailbox_id: string;
  thread_id: string;
  blob_sha256: string;
  size_bytes: number;
  received_at: string;
  sent_at: string | null;
  sent_sort: string;
  subject: string | null;
  subject_sort: string;
  from_sort: string;
  to_sort: string;
  cc_text: string;
  bcc_text: string;
  /** JSON {from, sender, to, cc, bcc, reply_to} */
  addresses: string;
  preview: string | null;
  has_attachments: number;
  /** JSON attachment parts */
  attachments: string;
  rfc_message_id: string | null;
  in_reply_to: string | null;
  is_spam: number;
  spam_score: number | null;
  /** JSON string[], lowercase, sorted */
  keywords: string;
  seen: number;
  flagged: number;
  answered: number;
  draft: number;
  modseq: number;
  /** The folders the message is in, ids sorted and comma-separated (kept with message_folders; migration 010). */
  folder_ids: string;
  created_at: string;
  updated_at: string;
}

/** A message's large, immutable columns, read only by the endpoints that need them (migration 010). */
export interface MessageContentsTable {
  message_id: string;
  /** "\nname: value\n…" lowercase, for header filters */
  headers_text: string;
  /** JSON string[] */
  references: string;
  /** JSON [{name, value}] */
  headers: string;
  /** JSON {envelope, bodystructure, parts} */
  imap: string;
  text_body: string | null;
  html_body: string | null;
  auth_results: string | null;
}

export interface MessageFoldersTable {
  message_id: string;
  folder_id: string;
  mailbox_id: string;
  uid: number;
  received_at: string;
  seen: number;
}

export interface MessageKeywordsTable {
  message_id: string;
  mailbox_id: string;
  keyword: string;
}

export interface IdentitiesTable {
  id: string;
  mailbox_id: string;
  name: string;
  email: string;
  reply_to: string;
  bcc: string;
  text_signature: string;
  html_signature: string;
  created_at: string;
  updated_at: string;
}

export interface IncomingLogsTable {
  id: string;
  team_id: string | null;
  mailbox_id: string | null;
  mailbox_email: string | null;
  event_type: string;
  is_spam: number;
  status: 'accepted' | 'rejected';
  reason: string | null;
  from_email: string | null;
  to_emails: string;
  subject: string | null;
  rfc_message_id: string | null;
  size_bytes: number | null;
  received_at: string;
}

export interface SettingsTable {
  key: string;
  value: string;
}

export interface EventsTable {
  seq: Generated<number>;
  id: string;
  team_id: string;
  mailbox_id: string | null;
  type: string;
  occurred_at: string;
  data: string;
  realtime: string | null;
  webhook_id: string | null;
  created_at: string;
}

export interface WebhooksTable {
  id: string;
  team_id: string;
  name: string | null;
  url: string;
  event_types: string;
  mailbox_ids: string;
  enabled: number;
  failing: number;
  secret: string;
  created_at: string;
  updated_at: string;
}

export interface WebhookDeliveriesTable {
  seq: Generated<number>;
  webhook_id: string;
  team_id: string;
  event_id: string;
  event_type: string;
  payload: string;
  payload_sha256: string;
  payload_bytes: number;
  attempts: number;
  state: 'pending' | 'done' | 'failed' | 'cancelled';
  next_attempt_at: string;
  last_attempt_at: string | null;
  created_at: string;
}

export interface WebhookAttemptsTable {
  id: string;
  delivery_seq: number;
  webhook_id: string;
  event_id: string;
  event_type: string;
  attempt: number;
  max_attempts: number;
  result: 'success' | 'retrying' | 'failed' | 'permanent_failure';
  response_status: number | null;
  response_ms: number;
  response_body: string | null;
  error_message: string | null;
  next_retry_at: string | null;
  request_payload_bytes: number;
  request_payload_sha256: string | null;
  created_at: string;
  expires_at: string;
}

// --- sending (migration 006)

export interface SubmissionsTable {
  id: string;
  team_id: string;
  mailbox_id: string;
  email_id: string;
  log_id: string;
  message_id: string | null;
  thread_id: string | null;
  identity_id: string | null;
  source: string;
  envelope_from: string;
  rcpt_to: string;
  undo_status: 'pending' | 'final' | 'canceled';
  send_at: string;
  raw: Buffer | null;
  size_bytes: number;
  dsn_blob_ids: string;
  created_at: string;
  updated_at: string;
}

export interface OutboundRecipientsTable {
  seq: Generated<number>;
  submission_id: string;
  team_id: string;
  mailbox_id: string;
  email: string;
  rcpt_type: string | null;
  domain: string;
  status: 'queued' | 'deferred' | 'delivered' | 'failed';
  smtp_reply: string | null;
  route: string | null;
  provider_id: string | null;
  attempts: number;
  next_attempt_at: string;
  lease_owner: string | null;
  first_deferred_at: string | null;
  final_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface ProvidersTable {
  id: string;
  team_id: string;
  name: string;
  type: string;
  status: 'active' | 'inactive' | 'error' | 'pending';
  status_reason: string | null;
  smtp_host: string;
  smtp_port: number;
  smtp_protocol: string;
  smtp_username: string;
  smtp_password: string;
  from_email: string | null;
  from_name: string | null;
  reply_to_email: string | null;
  reply_to_name: string | null;
  tracking_domain: string | null;
  percentage: number | null;
  quotas: string;
  last_tested_at: string | null;
  last_used_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface DeliveryLogsTable {
  id: string;
  team_id: string;
  mailbox_id: string;
  submission_id: string;
  email_id: string;
  provider_id: string | null;
  provider_name: string | null;
  message_id: string | null;
  from_email: string | null;
  to_email: string | null;
  subject: string | null;
  status: 'pending' | 'sent' | 'failed' | 'rejected';
  status_reason: string | null;
  attempts: number;
  sent_at: string | null;
  size_bytes: number | null;
  recipient_count: number;
  accepted_recipient_count: number;
  rejected_recipient_count: number;
  search_text: string;
  created_at: string;
  updated_at: string;
}

export interface Database {
  teams: TeamsTable;
  api_keys: ApiKeysTable;
  domains: DomainsTable;
  mailboxes: MailboxesTable;
  filter_sets: FilterSetsTable;
  idempotency_keys: IdempotencyTable;
  changes: ChangesTable;
  change_horizons: ChangeHorizonsTable;
  blobs: BlobsTable;
  folders: FoldersTable;
  threads: ThreadsTable;
  messages: MessagesTable;
  message_contents: MessageContentsTable;
  message_folders: MessageFoldersTable;
  message_keywords: MessageKeywordsTable;
  mailbox_message_counts: MailboxMessageCountsTable;
  thread_folders: ThreadFoldersTable;
  identities: IdentitiesTable;
  incoming_logs: IncomingLogsTable;
  settings: SettingsTable;
  events: EventsTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_attempts: WebhookAttemptsTable;
  submissions: SubmissionsTable;
  outbound_recipients: OutboundRecipientsTable;
  providers: ProvidersTable;
  delivery_logs: DeliveryLogsTable;
  uploads: UploadsTable;
  upload_intents: UploadIntentsTable;
}

export interface UploadsTable {
  id: string;
  surface: string;
  team_id: string;
  mailbox_id: string;
  filename: string;
  content_type: string;
  size_bytes: number;
  sha256: string;
  created_at: string;
  expires_at: string;
}

export interface UploadIntentsTable {
  id: string;
  surface: string;
  team_id: string;
  mailbox_id: string;
  filename: string;
  content_type: string | null;
  size_bytes: number;
  sha256: string | null;
  token_hash: string;
  expires_at: string;
  upload_id: string | null;
  created_at: string;
}
