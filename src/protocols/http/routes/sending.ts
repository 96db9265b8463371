// The Sending API (openapi-sending.json) on the same server under /api/v1: /emails/send,
// /emails/send/batch (partial success), /emails/attachments (+ GET), /emails/attachment-uploads
// (+ the PUT proven by X-Sendmux-Upload-Token) and GET /openapi.json. Mailbox keys only; schema
// failures are 422 validation_error (the route layer's `spec: 'sending'` rules).
import { createHash } from 'node:crypto';
import { AppError } from '../../../core/errors.ts';
import type { FieldIssue } from '../../../core/errors.ts';
import { checkFilename, checkSendingContent, mediaType, sendingTypeOf, SENDING_UPLOAD_BYTES_MAX } from '../../../services/send/uploads.ts';
import type { UploadRow } from '../../../store/index.ts';
import { issuesOf } from '../contract.ts';
import { STATUS_OF } from '../errors.ts';
import { defineRoute, type RouteDeps } from '../route.ts';
import type { MailboxPrincipal } from './mailbox/common.ts';
import { contentLengthOf, registerRawBodyScope, SEND_BODY_LIMIT_BYTES } from './mailbox/send.ts';

/** Messages in one batch (spec: BatchSendRequest.messages maxItems). */
export const BATCH_MAX = 100;
/** A batch may carry up to 100 messages; each is still held to the 25 MB message limit. */
const BATCH_BODY_LIMIT_BYTES = 256 * 1024 * 1024;

function attachmentView(row: UploadRow) {
  return { attachment_id: row.id, filename: row.filename, content_type: row.content_type, size_bytes: row.size_bytes, expires_at: row.expires_at };
}

function errorDetail(err: AppError) {
  const status = STATUS_OF[err.code];
  const param = err.options.param ?? err.options.errors?.[0]?.field;
  return {
    code: err.code,
    message: err.message,
    retryable: err.options.retryable ?? (status === 429 || status >= 500),
    ...(param !== undefined ? { param } : {}),
    ...(err.options.errors?.length ? { errors: err.options.errors } : {}),
  };
}

export function registerSendingRoutes(deps: RouteDeps): void {
  const { services } = deps;
  const uploads = services.uploads;
  const contract = deps.sendingContract;
  if (!contract) throw new Error('The Sending API needs the openapi-sending.json contract');
  const sendOp = contract.operation('POST', '/emails/send');
  const sender = (p: MailboxPrincipal) => ({ teamId: p.teamId, mailboxId: p.mailboxId });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'POST',
    path: '/emails/send',
    surface: 'sending',
    spec: 'sending',
    idempotent: true,
    bodyLimit: SEND_BODY_LIMIT_BYTES,
    handler: async ({ principal, body }) => {
      const sent = await services.send.sendingSend(sender(principal), body);
      return { data: { message_id: sent.emailId, status: 'queued' } };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'POST',
    path: '/emails/send/batch',
    surface: 'sending',
    spec: 'sending',
    idempotent: true,
    bodyLimit: BATCH_BODY_LIMIT_BYTES,
    ownBodyValidation: true,
    handler: async ({ principal, body }) => {
      // The envelope is checked as a whole; each message on its own, so one bad message fails alone.
      const issues: FieldIssue[] = [];
      const keys = Object.keys(body ?? {});
      for (const k of keys) if (k !== 'messages') issues.push({ field: k, code: 'unrecognized_keys', message: `Unrecognized key: ${k}` });
      const messages = (body as { messages?: unknown }).messages;
      if (!Array.isArray(messages)) issues.push({ field: 'messages', code: 'invalid_type', message: 'Required array' });
      else if (messages.length < 1 || messages.length > BATCH_MAX) issues.push({ field: 'messages', code: messages.length < 1 ? 'too_small' : 'too_big', message: `1 to ${BATCH_MAX} messages` });
      if (issues.length) throw new AppError('validation_error', 'Request body failed validation', { errors: issues });
      const results: Array<Record<string, unknown>> = [];
      const failures: AppError[] = [];
      for (const [index, message] of (messages as unknown[]).entries()) {
        try {
          if (!sendOp.validateBody!(message)) {
            const errors = issuesOf(sendOp.validateBody!.errors).map((e) => ({ ...e, field: `messages.${index}.${e.field}` }));
            throw new AppError('validation_error', 'Message failed validation', { errors });
          }
          const sent = await services.send.sendingSend(sender(principal), message as never);
          results.push({ index, status: 'queued', message_id: sent.emailId });
        } catch (err) {
          if (!(err instanceof AppError)) throw err;
          failures.push(err);
          results.push({ index, status: 'failed', message_id: null, error: errorDetail(err) });
        }
      }
      const queued = results.length - failures.length;
      if (queued === 0) {
        // Nothing queued: the whole batch answers with the shared reason (422 all invalid, 503 all transient).
        if (failures.every((f) => f.code === 'validation_error')) {
          throw new AppError('validation_error', 'Every message in the batch is invalid', { errors: failures.flatMap((f) => f.options.errors ?? []) });
        }
        const transient = failures.find((f) => STATUS_OF[f.code] >= 500);
        if (transient && failures.every((f) => STATUS_OF[f.code] >= 500)) throw transient;
      }
      return { data: { results, summary: { total: results.length, queued, failed: failures.length } } };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'POST',
    path: '/emails/attachment-uploads',
    surface: 'sending',
    spec: 'sending',
    idempotent: true,
    handler: async ({ principal, body }) => {
      checkFilename(body.filename);
      const implied = sendingTypeOf(body.filename, 'filename');
      const type = body.content_type !== undefined ? mediaType(body.content_type) : implied;
      if (!type) throw new AppError('validation_error', 'content_type must be a media type', { errors: [{ field: 'content_type', code: 'invalid_string', message: 'Not a media type' }] });
      if (body.size_bytes > SENDING_UPLOAD_BYTES_MAX) throw new AppError('payload_too_large', `Attachment exceeds ${SENDING_UPLOAD_BYTES_MAX} bytes`, { param: 'size_bytes' });
      const { intent, token } = await uploads.createIntent({
        surface: 'sending', teamId: principal.teamId, mailboxId: principal.mailboxId,
        filename: body.filename, contentType: type, sizeBytes: body.size_bytes, sha256: body.sha256 ?? null,
      });
      const path = `/api/v1/emails/attachment-uploads/${intent.id}`;
      return {
        status: 201,
        headers: { Location: path },
        data: {
          upload_id: intent.id, upload_url: `${services.config.publicUrl}${path}`, method: 'PUT', expires_at: intent.expires_at,
          max_size_bytes: SENDING_UPLOAD_BYTES_MAX,
          headers: { 'Content-Length': String(intent.size_bytes), 'Content-Type': type, 'X-Sendmux-Upload-Token': token },
        },
      };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'GET',
    path: '/emails/attachments/{attachment_id}',
    surface: 'sending',
    spec: 'sending',
    handler: async ({ principal, params }) => ({ data: attachmentView(await uploads.getSending(principal.mailboxId, params.attachment_id ?? '')) }),
  });

  // GET /openapi.json needs no key (security: []): the document with this server as its server.
  let spec: { text: string; etag: string } | null = null;
  deps.app.get('/api/v1/openapi.json', async (req, reply) => {
    if (!spec) {
      const text = JSON.stringify({ ...contract.doc, servers: [{ description: 'This Mailmux server', url: `${services.config.publicUrl}/api/v1` }] });
      spec = { text, etag: `W/"${createHash('sha256').update(text).digest('hex').slice(0, 32)}"` };
    }
    reply.header('ETag', spec.etag);
    const inm = req.headers['if-none-match'];
    if (typeof inm === 'string' && inm.split(',').some((t) => t.trim().replace(/^W\//, '') === spec!.etag.slice(2) || t.trim() === '*')) return reply.code(304).send();
    return reply.code(200).type('application/json').send(spec.text);
  });

  registerRawBodyScope(deps.app, SENDING_UPLOAD_BYTES_MAX, (child) => {
    const scoped: RouteDeps = { ...deps, app: child };
    // The delegated PUT: token, intent and Content-Length are checked before any byte is read.
    child.addHook('preParsing', async (req) => {
      if (req.method !== 'PUT') return;
      const token = req.headers['x-sendmux-upload-token'];
      if (typeof token !== 'string' && typeof req.headers.authorization === 'string') return; // the route answers
      const intent = await uploads.intentForPut('sending', (req.params as { upload_id?: string }).upload_id ?? '', typeof token === 'string' ? token : undefined);
      const length = contentLengthOf(req);
      if (length === null) throw new AppError('invalid_parameter', 'Content-Length is required', { param: 'Content-Length' });
      if (length !== intent.size_bytes) throw new AppError('payload_too_large', `Content-Length must be exactly ${intent.size_bytes}`, { param: 'Content-Length' });
    });
    defineRoute<MailboxPrincipal>(scoped, {
      method: 'POST',
      path: '/emails/attachments',
      surface: 'sending',
      spec: 'sending',
      idempotent: true,
      bodyLimit: SENDING_UPLOAD_BYTES_MAX,
      handler: async ({ principal, query, body, headers }) => {
        const filename = String(query.filename);
        checkFilename(filename);
        const implied = sendingTypeOf(filename, 'filename');
        const bytes = Buffer.isBuffer(body) ? body : Buffer.alloc(0);
        if (contentLengthOf({ headers } as never) === null) throw new AppError('invalid_parameter', 'Content-Length is required', { param: 'Content-Length' });
        if (bytes.byteLength === 0) throw new AppError('validation_error', 'The attachment is empty', { errors: [{ field: '(body)', code: 'too_small', message: 'Empty' }] });
        checkSendingContent(filename, bytes, '(body)');
        const override = typeof query.content_type === 'string' && query.content_type !== '' ? mediaType(query.content_type) : null;
        if (typeof query.content_type === 'string' && query.content_type !== '' && !override) throw new AppError('validation_error', 'content_type must be a media type', { errors: [{ field: 'content_type', code: 'invalid_string', message: 'Not a media type' }] });
        const given = mediaType(headers['content-type'] as string | undefined);
        const type = override ?? (given && given !== 'application/octet-stream' ? given : implied);
        const row = await uploads.store({ surface: 'sending', teamId: principal.teamId, mailboxId: principal.mailboxId, filename, contentType: type, bytes });
        return { status: 201, headers: { Location: `/api/v1/emails/attachments/${row.id}` }, data: attachmentView(row) };
      },
    });

    defineRoute<null>(scoped, {
      method: 'PUT',
      path: '/emails/attachment-uploads/{upload_id}',
      surface: 'sending',
      spec: 'sending',
      bodyLimit: SENDING_UPLOAD_BYTES_MAX,
      tokenAuth: (_q, headers) => typeof headers['x-sendmux-upload-token'] === 'string',
      handler: async ({ params, headers, body }) => {
        const intent = await uploads.intentForPut('sending', params.upload_id ?? '', headers['x-sendmux-upload-token'] as string | undefined);
        const length = contentLengthOf({ headers } as never);
        if (length === null) throw new AppError('invalid_parameter', 'Content-Length is required', { param: 'Content-Length' });
        const given = mediaType(headers['content-type'] as string | undefined);
        if (given && given !== 'application/octet-stream' && intent.content_type && given !== intent.content_type) {
          throw new AppError('invalid_parameter', `Content-Type must be ${intent.content_type}`, { param: 'Content-Type' });
        }
        const bytes = Buffer.isBuffer(body) ? body : Buffer.alloc(0);
        const row = await uploads.completeIntent(intent, bytes, intent.content_type ?? sendingTypeOf(intent.filename, 'filename'));
        return { status: 201, headers: { Location: `/api/v1/emails/attachments/${row.id}` }, data: attachmentView(row) };
      },
    });
  });
}
