// Outbound attachment uploads for both sending surfaces: direct uploads (mailbox blob_…, Sending
// att_…), presigned upload intents (upl_…) completed by an unauthenticated PUT that proves itself
// with a one-time token (stored hashed, short-lived), and resolution of uploaded ids at send time.
import { createHash, timingSafeEqual } from 'node:crypto';
import { iso } from '../../core/clock.ts';
import { AppError, validation } from '../../core/errors.ts';
import { hashSecret, newId, randomString } from '../../core/ids.ts';
import type { UploadIntentRow, UploadRow } from '../../store/index.ts';
import type { ServiceContext } from '../context.ts';

export type UploadSurface = 'mailbox' | 'sending';

/** Mailbox uploads (direct and presigned): the session's attachment_upload_bytes_max. */
export const MAILBOX_UPLOAD_BYTES_MAX = 7_500_000;
/** Sending API uploads: 18 MiB, the max_size_bytes the hosted API returns. */
export const SENDING_UPLOAD_BYTES_MAX = 18_874_368;
/** A presigned upload URL / token lives this long: long enough to PUT 18 MiB on a slow link. */
export const UPLOAD_INTENT_TTL_MS = 15 * 60_000;
/** An uploaded file can be referenced by a send for this long. */
export const UPLOAD_TTL_MS = 24 * 3_600_000;
export const UPLOAD_TOKEN_PREFIX = 'smx_upload_';

export function uploadMax(surface: UploadSurface): number {
  return surface === 'mailbox' ? MAILBOX_UPLOAD_BYTES_MAX : SENDING_UPLOAD_BYTES_MAX;
}

/**
 * Sending API attachment types by extension: images, documents, spreadsheets, presentations,
 * text, calendar and contacts. Executables and archives are refused (API-MAP §4.9).
 */
const SENDING_TYPES: Record<string, string> = {
  png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp', bmp: 'image/bmp',
  svg: 'image/svg+xml', tif: 'image/tiff', tiff: 'image/tiff', heic: 'image/heic', ico: 'image/x-icon',
  pdf: 'application/pdf', doc: 'application/msword', docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  odt: 'application/vnd.oasis.opendocument.text', rtf: 'application/rtf',
  xls: 'application/vnd.ms-excel', xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  ods: 'application/vnd.oasis.opendocument.spreadsheet', csv: 'text/csv',
  ppt: 'application/vnd.ms-powerpoint', pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  odp: 'application/vnd.oasis.opendocument.presentation', key: 'application/vnd.apple.keynote',
  txt: 'text/plain', md: 'text/markdown', html: 'text/html', htm: 'text/html', json: 'application/json', xml: 'application/xml',
  ics: 'text/calendar', vcf: 'text/vcard',
};

export function extensionOf(filename: string): string {
  const m = /\.([A-Za-z0-9]{1,10})$/.exec(filename);
  return m ? m[1]!.toLowerCase() : '';
}

/** The Sending API's allowed-extension rule; returns the type the extension implies. */
export function sendingTypeOf(filename: string, field: string): string {
  const type = SENDING_TYPES[extensionOf(filename)];
  if (!type) throw validation('Attachment type is not allowed (executables, archives and unknown extensions are refused)', [{ field, code: 'custom', message: 'File extension is not allowed' }]);
  return type;
}

/** Leading bytes of binary formats: a file claiming one of these extensions must start with them. */
const MAGIC: Record<string, Buffer[]> = {
  pdf: [Buffer.from('%PDF-')],
  png: [Buffer.from([0x89, 0x50, 0x4e, 0x47])],
  jpg: [Buffer.from([0xff, 0xd8, 0xff])],
  jpeg: [Buffer.from([0xff, 0xd8, 0xff])],
  gif: [Buffer.from('GIF87a'), Buffer.from('GIF89a')],
  webp: [Buffer.from('RIFF')],
  docx: [Buffer.from([0x50, 0x4b, 0x03, 0x04])],
  xlsx: [Buffer.from([0x50, 0x4b, 0x03, 0x04])],
  pptx: [Buffer.from([0x50, 0x4b, 0x03, 0x04])],
  odt: [Buffer.from([0x50, 0x4b, 0x03, 0x04])],
  ods: [Buffer.from([0x50, 0x4b, 0x03, 0x04])],
  odp: [Buffer.from([0x50, 0x4b, 0x03, 0x04])],
  doc: [Buffer.from([0xd0, 0xcf, 0x11, 0xe0])],
  xls: [Buffer.from([0xd0, 0xcf, 0x11, 0xe0])],
  ppt: [Buffer.from([0xd0, 0xcf, 0x11, 0xe0])],
};

/**
 * Sending API: binary files are sniffed against the type their extension claims (a .pdf must be a
 * PDF); text formats are taken by extension. 422 on a mismatch.
 */
export function checkSendingContent(filename: string, bytes: Buffer, field: string): void {
  const magic = MAGIC[extensionOf(filename)];
  if (magic && !magic.some((m) => bytes.subarray(0, m.byteLength).equals(m))) {
    throw validation('Attachment content does not match its file type', [{ field, code: 'custom', message: `Not a .${extensionOf(filename)} file` }]);
  }
}

/** A header-safe filename: no CR/LF or NUL, at most 255 characters. */
export function checkFilename(filename: string, param = 'filename'): void {
  if (filename.length === 0 || filename.length > 255 || /[\r\n\0]/.test(filename)) {
    throw new AppError('invalid_parameter', 'filename must be 1 to 255 characters without line breaks', { param });
  }
}

const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/i;

/** The bare media type of a Content-Type header (parameters dropped), lowercased; null when malformed. */
export function mediaType(value: string | undefined | null): string | null {
  const t = (value ?? '').split(';')[0]!.trim().toLowerCase();
  return MEDIA_TYPE.test(t) ? t : null;
}

export interface UploadView {
  id: string;
  filename: string;
  content_type: string;
  size_bytes: number;
  expires_at: string;
}

export interface IntentCreated {
  intent: UploadIntentRow;
  token: string;
}

export class UploadsService {
  private readonly ctx: ServiceContext;
  constructor(ctx: ServiceContext) {
    this.ctx = ctx;
  }

  private now(): number {
    return this.ctx.clock.now();
  }

  /** Stores uploaded bytes; the caller has checked size and type. */
  async store(input: { surface: UploadSurface; teamId: string; mailboxId: string; filename: string; contentType: string; bytes: Buffer; id?: string }): Promise<UploadRow> {
    const ref = await this.ctx.store.blobs.put(input.bytes);
    const now = this.now();
    const row: UploadRow = {
      id: input.id ?? newId(input.surface === 'mailbox' ? 'blob' : 'att'),
      surface: input.surface,
      team_id: input.teamId,
      mailbox_id: input.mailboxId,
      filename: input.filename,
      content_type: input.contentType,
      size_bytes: input.bytes.byteLength,
      sha256: ref.sha256,
      created_at: iso(now),
      expires_at: iso(now + UPLOAD_TTL_MS),
    };
    await this.ctx.store.uploads.insert(row);
    this.ctx.log.info({ event: 'upload.stored', upload_id: row.id, mailbox_id: row.mailbox_id, size_bytes: row.size_bytes });
    return row;
  }

  async createIntent(input: { surface: UploadSurface; teamId: string; mailboxId: string; filename: string; contentType: string | null; sizeBytes: number; sha256?: string | null }): Promise<IntentCreated> {
    const max = uploadMax(input.surface);
    if (input.sizeBytes > max) throw new AppError('payload_too_large', `Attachment exceeds the ${max}-byte upload limit`, { param: 'size_bytes' });
    const token = UPLOAD_TOKEN_PREFIX + randomString(40);
    const now = this.now();
    const intent: UploadIntentRow = {
      id: newId('upl'),
      surface: input.surface,
      team_id: input.teamId,
      mailbox_id: input.mailboxId,
      filename: input.filename,
      content_type: input.contentType,
      size_bytes: input.sizeBytes,
      sha256: input.sha256 ?? null,
      token_hash: hashSecret(token),
      expires_at: iso(now + UPLOAD_INTENT_TTL_MS),
      upload_id: null,
      created_at: iso(now),
    };
    await this.ctx.store.uploads.insertIntent(intent);
    return { intent, token };
  }

  /**
   * The intent a PUT names, once its token is proven. Unknown or expired intents are 404, a wrong
   * token 401 (the same answer for a token of another intent).
   */
  async intentForPut(surface: UploadSurface, uploadId: string, token: string | undefined): Promise<UploadIntentRow> {
    const intent = await this.ctx.store.uploads.getIntent(uploadId);
    if (!intent || intent.surface !== surface || Date.parse(intent.expires_at) <= this.now()) throw new AppError('not_found', 'Upload not found or expired');
    const given = Buffer.from(hashSecret(token ?? ''), 'hex');
    if (!token || !timingSafeEqual(given, Buffer.from(intent.token_hash, 'hex'))) throw new AppError('authentication_required', 'Upload token is missing, invalid or expired');
    return intent;
  }

  /** Completes an intent with its bytes; a repeated PUT with the same bytes answers the same upload. */
  async completeIntent(intent: UploadIntentRow, bytes: Buffer, contentType: string): Promise<UploadRow> {
    if (bytes.byteLength !== intent.size_bytes) throw new AppError('payload_too_large', `Upload must be exactly ${intent.size_bytes} bytes`);
    const digest = createHash('sha256').update(bytes).digest('hex');
    if (intent.sha256 && intent.sha256 !== digest) throw validation('Uploaded bytes do not match the declared sha256', [{ field: 'sha256', code: 'custom', message: 'Digest mismatch' }]);
    if (intent.upload_id) {
      const done = await this.ctx.store.uploads.get(intent.upload_id);
      if (done && done.sha256 === digest) return done;
      throw new AppError('conflict', 'Upload already completed with different content');
    }
    if (intent.surface === 'sending') checkSendingContent(intent.filename, bytes, '(body)');
    const id = newId(intent.surface === 'mailbox' ? 'blob' : 'att');
    // Claim the intent first: two concurrent PUTs cannot both complete it.
    if (!(await this.ctx.store.uploads.completeIntent(intent.id, id))) {
      const again = await this.ctx.store.uploads.getIntent(intent.id);
      return this.completeIntent(again!, bytes, contentType);
    }
    return this.store({ surface: intent.surface as UploadSurface, teamId: intent.team_id, mailboxId: intent.mailbox_id, filename: intent.filename, contentType, bytes, id });
  }

  /** A completed upload a send may use, with its bytes; 422 when unknown, expired or not this sender's. */
  async resolve(surface: UploadSurface, owner: { teamId: string; mailboxId: string }, id: string, field: string): Promise<{ row: UploadRow; bytes: Buffer }> {
    const row = await this.ctx.store.uploads.get(id);
    const usable = row && row.surface === surface && Date.parse(row.expires_at) > this.now() && row.mailbox_id === owner.mailboxId;
    if (!row || !usable) throw validation(`Uploaded attachment ${id} is unknown or expired`, [{ field, code: 'custom', message: 'Unknown or expired upload' }]);
    const bytes = await this.ctx.store.blobs.get(row.sha256);
    if (!bytes) throw new AppError('service_unavailable', 'Attachment storage temporarily unavailable');
    return { row, bytes };
  }

  /** Sending API GET /emails/attachments/{id}: this mailbox key's uploads only (never across mailboxes, even within a team); 404 once expired. */
  async getSending(mailboxId: string, id: string): Promise<UploadRow> {
    const row = await this.ctx.store.uploads.get(id);
    if (!row || row.surface !== 'sending' || row.mailbox_id !== mailboxId || Date.parse(row.expires_at) <= this.now()) throw new AppError('not_found', 'Attachment not found or expired');
    return row;
  }

  /** Drops expired uploads and intents (blob bytes stay if a message or another upload uses them). */
  async purgeExpired(): Promise<number> {
    const digests = await this.ctx.store.uploads.purgeExpired(iso(this.now()));
    for (const d of new Set(digests)) {
      if (await this.ctx.store.uploads.digestInUse(d)) continue;
      if (await this.ctx.store.messages.blobInUse(d)) continue;
      await this.ctx.store.blobs.delete(d);
    }
    return digests.length;
  }
}
