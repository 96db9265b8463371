// JSON shapes of the Mailbox API built from stored rows (MailboxMessageSummary, MailboxMessage,
// MailboxAttachment). Attachment download URLs carry a short-lived HMAC token.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { MessageRow } from '../../store/index.ts';

export interface Address {
  email: string;
  name: string | null;
}

export interface StoredAddresses {
  from: Address | null;
  sender: Address | null;
  to: Address[];
  cc: Address[];
  bcc: Address[];
  reply_to: Address[];
}

export interface StoredAttachment {
  part_id: string;
  filename: string | null;
  content_type: string;
  size_bytes: number | null;
  disposition: string | null;
  content_id: string | null;
}

/** Attachment ids are derived from the MIME part number: stable and needing no table. */
export function attachmentId(partId: string): string {
  return `att_${partId.replaceAll('.', '_')}`;
}

export function partIdOf(attachmentIdValue: string): string | null {
  const m = /^att_([0-9]+(?:_[0-9]+)*)$/.exec(attachmentIdValue);
  return m ? m[1]!.replaceAll('_', '.') : null;
}

/** Download tokens live this long (spec: "short-lived"). */
export const DOWNLOAD_TOKEN_TTL_MS = 15 * 60_000;

export class DownloadTokens {
  private readonly key: Buffer;
  constructor(key: Buffer) {
    this.key = key;
  }

  sign(messageId: string, attId: string, expiresAt: number): string {
    const exp = Math.floor(expiresAt / 1000).toString(36);
    const mac = createHmac('sha256', this.key).update(`${messageId}\n${attId}\n${exp}`).digest('base64url').slice(0, 32);
    return `${exp}.${mac}`;
  }

  verify(messageId: string, attId: string, token: string, now: number): boolean {
    const [exp, mac] = token.split('.');
    if (!exp || !mac || !/^[0-9a-z]+$/.test(exp)) return false;
    if (parseInt(exp, 36) * 1000 < now) return false;
    const expected = this.sign(messageId, attId, parseInt(exp, 36) * 1000).split('.')[1] ?? '';
    return expected.length === mac.length && timingSafeEqual(Buffer.from(expected), Buffer.from(mac));
  }
}

export interface ViewContext {
  baseUrl: string;
  tokens: DownloadTokens;
  now: number;
}

export function attachmentViews(row: MessageRow, vc: ViewContext): Record<string, unknown>[] {
  const list = JSON.parse(row.attachments) as StoredAttachment[];
  const exp = vc.now + DOWNLOAD_TOKEN_TTL_MS;
  return list.map((a) => {
    const id = attachmentId(a.part_id);
    return {
      id,
      filename: a.filename,
      content_type: a.content_type,
      size_bytes: a.size_bytes,
      disposition: a.disposition,
      content_id: a.content_id,
      download_url: `${vc.baseUrl}/api/v1/mailbox/messages/${row.id}/attachments/${id}?download_token=${vc.tokens.sign(row.id, id, exp)}`,
    };
  });
}

export function summaryView(row: MessageRow, folderIds: string[], vc: ViewContext): Record<string, unknown> {
  return { ...summaryFields(row, folderIds), attachments: attachmentViews(row, vc) };
}

/** The summary without attachment links (those carry short-lived tokens). */
export function summaryFields(row: MessageRow, folderIds: string[]): Record<string, unknown> {
  const a = JSON.parse(row.addresses) as StoredAddresses;
  return {
    id: row.id,
    thread_id: row.thread_id,
    folder_ids: folderIds,
    keywords: JSON.parse(row.keywords) as string[],
    flags: { seen: row.seen === 1, flagged: row.flagged === 1, draft: row.draft === 1, answered: row.answered === 1 },
    from: a.from,
    to: a.to,
    cc: a.cc,
    bcc: a.bcc,
    subject: row.subject,
    preview: row.preview,
    received_at: row.received_at,
    sent_at: row.sent_at,
    size_bytes: row.size_bytes,
    has_attachments: row.has_attachments === 1,
  };
}

export function detailView(row: MessageRow, folderIds: string[], vc: ViewContext): Record<string, unknown> {
  return { ...summaryView(row, folderIds, vc), text_body: row.text_body, html_body: row.html_body };
}

