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

export interface BlobsTable {
  sha256: string;
  size: number;
  data: Buffer;
}

export interface Database {
  teams: TeamsTable;
  api_keys: ApiKeysTable;
  domains: DomainsTable;
  mailboxes: MailboxesTable;
  filter_sets: FilterSetsTable;
  idempotency_keys: IdempotencyTable;
  changes: ChangesTable;
  blobs: BlobsTable;
}
