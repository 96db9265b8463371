// Composing outbound mail for the sending front-ends: the Mailbox API send, the Sending API and
// SMTP submission all end here, build (or complete) an RFC 5322 message with nodemailer's
// MailComposer and hand it to outbound.submit, which stores the Sent copy and queues delivery.
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { AppError, invalidParameter, validation } from '../../core/errors.ts';
import { randomString } from '../../core/ids.ts';
import { normaliseEmail, splitAddress } from '../../mime/addresses.ts';
import { parseMessageIds, boundReferences } from '../../mime/header-values.ts';
import type { MailboxRow } from '../../store/index.ts';
import type { ServiceContext } from '../context.ts';
import type { OutboundService, SubmitResult } from './outbound.ts';
import { checkSendingContent, sendingTypeOf, type UploadsService } from './uploads.ts';

export interface Addr {
  email: string;
  name?: string | null | undefined;
}

export interface ComposeAttachment {
  filename: string;
  contentType: string;
  content: Buffer;
}

export interface ComposeInput {
  from: Addr;
  to: Addr[];
  cc: Addr[];
  bcc: Addr[];
  replyTo: Addr[];
  subject: string;
  text: string | null;
  html: string | null;
  headers: Array<{ key: string; value: string }>;
  attachments: ComposeAttachment[];
  inReplyTo: string | null;
  references: string[];
  messageId: string;
  date: Date;
}

/** Final outbound message, headers and encoded attachments included (session outbound_raw_message_bytes_max). */
export const OUTBOUND_RAW_BYTES_MAX = 26_214_400;
/** Decoded inline (base64) attachment bytes on one Mailbox API send (session inline_attachment_bytes_max). */
export const INLINE_ATTACHMENT_BYTES_MAX = 5_000_000;
/** To + Cc + Bcc on one API send (the Sending API's documented 50; the Mailbox API uses the same). */
export const SEND_RECIPIENTS_MAX = 50;
/** Custom headers on one send, and the longest value (RFC 5322 line length). */
export const CUSTOM_HEADERS_MAX = 50;
export const CUSTOM_HEADER_VALUE_MAX = 998;

/** Headers the composer owns: a custom header may not set them. */
const RESERVED_HEADERS = new Set([
  'from', 'to', 'cc', 'bcc', 'subject', 'date', 'message-id', 'mime-version', 'content-type', 'content-transfer-encoding',
  'content-disposition', 'sender', 'return-path', 'received', 'dkim-signature', 'reply-to',
]);
const HEADER_NAME = /^[!-9;-~]{1,76}$/;
const BASE64 = /^[A-Za-z0-9+/\r\n]*={0,2}[\r\n]*$/;

/** Builds the message bytes; Bcc never appears in the headers (MailComposer drops it). */
export async function composeMime(input: ComposeInput): Promise<Buffer> {
  const addr = (a: Addr) => ({ name: a.name ?? '', address: a.email });
  const composer = new MailComposer({
    from: addr(input.from),
    to: input.to.map(addr),
    ...(input.cc.length ? { cc: input.cc.map(addr) } : {}),
    ...(input.bcc.length ? { bcc: input.bcc.map(addr) } : {}),
    ...(input.replyTo.length ? { replyTo: input.replyTo.map(addr) } : {}),
    subject: input.subject,
    ...(input.text !== null ? { text: input.text } : {}),
    ...(input.html !== null ? { html: input.html } : {}),
    ...(input.text === null && input.html === null ? { text: '' } : {}),
    headers: input.headers,
    attachments: input.attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, content: a.content })),
    ...(input.inReplyTo ? { inReplyTo: `<${input.inReplyTo}>` } : {}),
    ...(input.references.length ? { references: input.references.map((r) => `<${r}>`) } : {}),
    messageId: `<${input.messageId}>`,
    date: input.date,
  });
  return composer.compile().build();
}

/** A fresh Message-ID on the sender's domain (the part after the last @). */
export function newMessageId(fromEmail: string): string {
  const domain = fromEmail.slice(fromEmail.lastIndexOf('@') + 1) || 'localhost';
  return `${randomString(24)}@${domain}`;
}

export function appendTextSignature(text: string, signature: string): string {
  if (!signature.trim()) return text;
  return `${text.replace(/\s+$/, '')}\n\n-- \n${signature}`;
}

export function appendHtmlSignature(html: string, signature: string): string {
  if (!signature.trim()) return html;
  const block = `<br><br><div class="mailmux-signature">${signature}</div>`;
  const at = html.search(/<\/body\s*>/i);
  return at >= 0 ? html.slice(0, at) + block + html.slice(at) : html + block;
}

function decodeBase64(content: string, field: string): Buffer {
  if (!BASE64.test(content)) throw new AppError('invalid_parameter', 'Attachment content must be base64', { param: field });
  return Buffer.from(content, 'base64');
}

function checkHeaderText(value: string, field: string): void {
  if (/[\r\n\0]/.test(value)) throw invalidParameter(`${field} must not contain line breaks`, field);
}

/** De-duplicated envelope recipients, in order. */
export function envelopeOf(groups: Addr[][]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const g of groups) {
    for (const a of g) {
      const e = normaliseEmail(a.email);
      if (!seen.has(e)) {
        seen.add(e);
        out.push(e);
      }
    }
  }
  return out;
}

interface MailboxSendBody {
  to: Addr[];
  cc?: Addr[];
  bcc?: Addr[];
  reply_to?: Addr[];
  from?: Addr;
  subject: string;
  text_body?: string;
  html_body?: string;
  custom_headers?: Record<string, string>;
  attachments?: Array<{ filename: string; content_type: string; content?: string; blob_id?: string }>;
}

interface SendingBody {
  from: Addr;
  to: Addr;
  cc?: Addr[];
  bcc?: Addr[];
  reply_to?: Addr;
  return_path?: string;
  subject: string;
  html_body: string;
  text_body?: string;
  custom_headers?: Record<string, string>;
  attachments?: Array<{ content?: string; filename?: string; type?: string; encoding?: string; attachment_id?: string }>;
}

export interface Sender {
  teamId: string;
  mailboxId: string;
}

export class SendService {
  private readonly ctx: ServiceContext;
  private readonly uploads: UploadsService;
  private readonly outbound: OutboundService;

  constructor(ctx: ServiceContext, uploads: UploadsService, outbound: OutboundService) {
    this.ctx = ctx;
    this.uploads = uploads;
    this.outbound = outbound;
  }

  private async activeMailbox(mailboxId: string): Promise<MailboxRow> {
    const m = await this.ctx.store.mailboxes.get(mailboxId);
    if (!m || m.status !== 'active') throw new AppError('insufficient_permissions', 'The sending mailbox is not active');
    return m;
  }

  private checkRecipients(groups: Addr[][]): void {
    const total = groups.reduce((n, g) => n + g.length, 0);
    if (total > SEND_RECIPIENTS_MAX) throw validation(`At most ${SEND_RECIPIENTS_MAX} recipients (to, cc and bcc together)`, [{ field: 'to', code: 'too_big', message: `More than ${SEND_RECIPIENTS_MAX} recipients` }]);
    for (const [gi, g] of groups.entries()) {
      for (const [i, a] of g.entries()) {
        if (!splitAddress(normaliseEmail(a.email))) throw invalidParameter(`Invalid recipient address ${JSON.stringify(a.email)}`, `${['to', 'cc', 'bcc'][gi]}.${i}.email`);
        if (a.name) checkHeaderText(a.name, `${['to', 'cc', 'bcc'][gi]}.${i}.name`);
      }
    }
  }

  /** Custom headers, with In-Reply-To / References taken out for threading. */
  private customHeaders(raw: Record<string, string> | undefined, opts: { xOnly: boolean }): { headers: Array<{ key: string; value: string }>; inReplyTo: string | null; references: string[] } {
    const headers: Array<{ key: string; value: string }> = [];
    let inReplyTo: string | null = null;
    let references: string[] = [];
    const entries = Object.entries(raw ?? {});
    if (entries.length > CUSTOM_HEADERS_MAX) throw invalidParameter(`At most ${CUSTOM_HEADERS_MAX} custom headers`, 'custom_headers');
    for (const [key, value] of entries) {
      const lower = key.toLowerCase();
      const field = `custom_headers.${key}`;
      if (!HEADER_NAME.test(key)) throw invalidParameter(`Invalid header name ${JSON.stringify(key)}`, field);
      checkHeaderText(value, field);
      if (value.length > CUSTOM_HEADER_VALUE_MAX) throw invalidParameter(`Header ${key} is longer than ${CUSTOM_HEADER_VALUE_MAX} characters`, field);
      if (opts.xOnly && !lower.startsWith('x-')) throw validation('Only X-* custom headers are allowed', [{ field, code: 'custom', message: 'Header name must start with X-' }]);
      if (lower === 'in-reply-to') inReplyTo = value.trim();
      else if (lower === 'references') references = parseMessageIds(value);
      else if (RESERVED_HEADERS.has(lower)) throw invalidParameter(`Header ${key} is set by the server`, field);
      else headers.push({ key, value });
    }
    return { headers, inReplyTo, references };
  }

  /**
   * Threading for a reply: In-Reply-To names the message replied to, by msg_ id or by Message-ID.
   * References become the parent's References plus its Message-ID (RFC 5322 §3.6.4).
   */
  private async threading(mailboxId: string, inReplyTo: string | null, given: string[]): Promise<{ inReplyTo: string | null; references: string[]; parentId: string | null }> {
    if (!inReplyTo) return { inReplyTo: null, references: given, parentId: null };
    let parent = inReplyTo.startsWith('msg_') ? await this.ctx.store.messages.get(inReplyTo) : undefined;
    if (inReplyTo.startsWith('msg_') && (!parent || parent.mailbox_id !== mailboxId)) {
      throw validation('In-Reply-To names a message this mailbox does not hold', [{ field: 'custom_headers.In-Reply-To', code: 'custom', message: 'Unknown message' }]);
    }
    if (!parent) {
      const rfc = parseMessageIds(inReplyTo)[0];
      if (!rfc) throw invalidParameter('In-Reply-To must be a Message-ID or a msg_ id', 'custom_headers.In-Reply-To');
      const [hit] = await this.ctx.store.messages.byRfcMessageIds(mailboxId, [rfc]);
      parent = hit ? await this.ctx.store.messages.get(hit.id) : undefined;
      if (!parent) return { inReplyTo: rfc, references: given.length ? given : [rfc], parentId: null };
    }
    const parentRfc = parent.rfc_message_id;
    const refs = [...(JSON.parse(parent.references) as string[])];
    if (parentRfc && !refs.includes(parentRfc)) refs.push(parentRfc);
    return { inReplyTo: parentRfc, references: boundReferences(refs), parentId: parent.id };
  }

  private checkSize(raw: Buffer): void {
    if (raw.byteLength > OUTBOUND_RAW_BYTES_MAX) throw new AppError('payload_too_large', `The final message is ${raw.byteLength} bytes; the limit is ${OUTBOUND_RAW_BYTES_MAX}`);
  }

  /** POST /mailbox/messages/send. */
  async mailboxSend(sender: Sender, body: MailboxSendBody): Promise<SubmitResult> {
    const mailbox = await this.activeMailbox(sender.mailboxId);
    const [identity] = await this.ctx.store.identities.listForMailbox(mailbox.id);
    const cc = body.cc ?? [];
    const bcc = body.bcc ?? [];
    this.checkRecipients([body.to, cc, bcc]);
    checkHeaderText(body.subject, 'subject');
    for (const [i, a] of (body.reply_to ?? []).entries()) if (a.name) checkHeaderText(a.name, `reply_to.${i}.name`);
    let from: Addr = { email: mailbox.email, name: identity?.name || mailbox.display_name || null };
    if (body.from) {
      if (normaliseEmail(body.from.email) !== mailbox.email) throw validation('from must be the mailbox address', [{ field: 'from.email', code: 'custom', message: 'Not this mailbox\'s address' }]);
      if (body.from.name) checkHeaderText(body.from.name, 'from.name');
      from = { email: mailbox.email, name: body.from.name ?? from.name ?? null };
    }
    const custom = this.customHeaders(body.custom_headers, { xOnly: false });
    const attachments: ComposeAttachment[] = [];
    let inline = 0;
    for (const [i, a] of (body.attachments ?? []).entries()) {
      checkHeaderText(a.filename, `attachments.${i}.filename`);
      checkHeaderText(a.content_type, `attachments.${i}.content_type`);
      if (a.content !== undefined) {
        const content = decodeBase64(a.content, `attachments.${i}.content`);
        inline += content.byteLength;
        if (inline > INLINE_ATTACHMENT_BYTES_MAX) throw new AppError('payload_too_large', `Inline attachments exceed ${INLINE_ATTACHMENT_BYTES_MAX} bytes; upload larger files with /mailbox/attachments:upload`, { param: `attachments.${i}.content` });
        attachments.push({ filename: a.filename, contentType: a.content_type, content });
      } else {
        const { bytes } = await this.uploads.resolve('mailbox', sender, a.blob_id!, `attachments.${i}.blob_id`);
        attachments.push({ filename: a.filename, contentType: a.content_type, content: bytes });
      }
    }
    const thread = await this.threading(mailbox.id, custom.inReplyTo, custom.references);
    const text = body.text_body !== undefined ? appendTextSignature(body.text_body, identity?.text_signature ?? '') : null;
    const html = body.html_body !== undefined ? appendHtmlSignature(body.html_body, identity?.html_signature ?? '') : null;
    const raw = await composeMime({
      from, to: body.to, cc, bcc, replyTo: body.reply_to ?? [], subject: body.subject, text, html,
      headers: custom.headers, attachments, inReplyTo: thread.inReplyTo, references: thread.references,
      messageId: newMessageId(mailbox.email), date: new Date(this.ctx.clock.now()),
    });
    this.checkSize(raw);
    return this.outbound.submit({
      mailboxId: mailbox.id, raw, envelopeFrom: mailbox.email, recipients: envelopeOf([body.to, cc, bcc]),
      source: 'mailbox_api', identityId: identity?.id ?? null, inReplyToMessageId: thread.parentId,
    });
  }

  /** POST /emails/send (and each message of /emails/send/batch). */
  async sendingSend(sender: Sender, body: SendingBody): Promise<SubmitResult> {
    const mailbox = await this.activeMailbox(sender.mailboxId);
    if (normaliseEmail(body.from.email) !== mailbox.email) throw new AppError('insufficient_permissions', 'This key may only send from its mailbox address', { param: 'from.email' });
    const domain = mailbox.email.slice(mailbox.email.lastIndexOf('@') + 1);
    let envelopeFrom = mailbox.email;
    if (body.return_path) {
      const rp = normaliseEmail(body.return_path);
      if (splitAddress(rp)?.domain !== domain) throw new AppError('insufficient_permissions', 'return_path must be on the mailbox\'s domain', { param: 'return_path' });
      envelopeFrom = rp;
    }
    const to = [body.to];
    const cc = body.cc ?? [];
    const bcc = body.bcc ?? [];
    this.checkRecipients([to, cc, bcc]);
    const custom = this.customHeaders(body.custom_headers, { xOnly: true });
    const attachments: ComposeAttachment[] = [];
    for (const [i, a] of (body.attachments ?? []).entries()) {
      if (a.attachment_id !== undefined) {
        const { row, bytes } = await this.uploads.resolve('sending', sender, a.attachment_id, `attachments.${i}.attachment_id`);
        attachments.push({ filename: row.filename, contentType: row.content_type, content: bytes });
      } else {
        const filename = a.filename!;
        if (/[\r\n\0]/.test(filename)) throw validation('Attachment filename must not contain line breaks', [{ field: `attachments.${i}.filename`, code: 'invalid_string', message: 'Line break in filename' }]);
        const implied = sendingTypeOf(filename, `attachments.${i}.filename`);
        if (!BASE64.test(a.content!)) throw validation('Attachment content must be base64', [{ field: `attachments.${i}.content`, code: 'invalid_string', message: 'Not base64' }]);
        const type = a.type && !/[\r\n\0]/.test(a.type) ? a.type : implied;
        const content = Buffer.from(a.content!, 'base64');
        checkSendingContent(filename, content, `attachments.${i}.content`);
        attachments.push({ filename, contentType: type, content });
      }
    }
    const raw = await composeMime({
      from: { email: mailbox.email, name: body.from.name ?? null }, to, cc, bcc, replyTo: body.reply_to ? [body.reply_to] : [],
      subject: body.subject, text: body.text_body ?? null, html: body.html_body, headers: custom.headers, attachments,
      inReplyTo: null, references: [], messageId: newMessageId(mailbox.email), date: new Date(this.ctx.clock.now()),
    });
    this.checkSize(raw);
    return this.outbound.submit({ mailboxId: mailbox.id, raw, envelopeFrom, recipients: envelopeOf([to, cc, bcc]), source: 'sending_api' });
  }
}

/**
 * SMTP submission: a message as the client wrote it, completed with a Message-ID and a Date when
 * missing and with any Bcc header removed (the envelope carries those recipients).
 */
export function completeSubmittedMessage(raw: Buffer, opts: { messageIdDomain: string; now: Date }): { raw: Buffer; headerText: string } {
  let end = raw.indexOf('\r\n\r\n');
  let sepLen = 4;
  const lf = raw.indexOf('\n\n');
  if (end < 0 || (lf >= 0 && lf < end)) {
    end = lf;
    sepLen = 2;
  }
  const headerEnd = end < 0 ? raw.byteLength : end;
  const header = raw.subarray(0, headerEnd).toString('latin1');
  const lines = header.split(/\r?\n/);
  const kept: string[] = [];
  let dropping = false;
  for (const line of lines) {
    if (/^[ \t]/.test(line)) {
      if (!dropping) kept.push(line);
      continue;
    }
    dropping = /^bcc\s*:/i.test(line);
    if (!dropping) kept.push(line);
  }
  const added: string[] = [];
  if (!kept.some((l) => /^message-id\s*:/i.test(l))) added.push(`Message-ID: <${randomString(24)}@${opts.messageIdDomain}>`);
  if (!kept.some((l) => /^date\s*:/i.test(l))) added.push(`Date: ${opts.now.toUTCString().replace('GMT', '+0000')}`);
  const headerText = [...added, ...kept].join('\r\n');
  const rest = end < 0 ? Buffer.alloc(0) : raw.subarray(end + sepLen);
  const out = Buffer.concat([Buffer.from(headerText, 'latin1'), Buffer.from('\r\n\r\n'), rest]);
  return { raw: out, headerText };
}
