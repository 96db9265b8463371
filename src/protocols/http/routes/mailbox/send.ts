// Mailbox API sending: POST /mailbox/messages/send, the direct attachment upload
// (POST /mailbox/attachments:upload) and the presigned flow (POST /mailbox/attachment-uploads, then
// an unauthenticated PUT to the returned URL with the exact Content-Type and Content-Length).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../../../../core/errors.ts';
import { checkFilename, mediaType, MAILBOX_UPLOAD_BYTES_MAX, type UploadsService } from '../../../../services/send/uploads.ts';
import type { UploadIntentRow, UploadRow } from '../../../../store/index.ts';
import { defineRoute, type RouteDeps } from '../../route.ts';
import type { MailboxPrincipal } from './common.ts';

/**
 * The send body may carry 5 MB of inline attachments as base64 and bodies up to the 25 MB message
 * limit; the composed message is checked against 26,214,400 bytes (413) after this coarse cap.
 */
export const SEND_BODY_LIMIT_BYTES = 64 * 1024 * 1024;

export function uploadView(row: UploadRow) {
  return { blob_id: row.id, filename: row.filename, content_type: row.content_type, size_bytes: row.size_bytes };
}

/** Upload routes take any Content-Type as bytes (a JSON file is an attachment, not a request body). */
export function registerRawBodyScope(app: FastifyInstance, limit: number, fn: (child: FastifyInstance) => void): void {
  void app.register(async (child) => {
    child.removeAllContentTypeParsers();
    child.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: limit }, (_req, body, done) => done(null, body));
    fn(child);
  });
}

/** Content-Length as sent: required and exact on presigned PUTs (chunked bodies are refused). */
export function contentLengthOf(req: FastifyRequest): number | null {
  const h = req.headers['content-length'];
  return typeof h === 'string' && /^\d{1,12}$/.test(h) ? Number(h) : null;
}

export function registerMailboxSendRoutes(deps: RouteDeps): void {
  const { services } = deps;
  const uploads = services.uploads;

  defineRoute<MailboxPrincipal>(deps, {
    method: 'POST',
    path: '/mailbox/messages/send',
    surface: 'mailbox',
    idempotent: true,
    bodyLimit: SEND_BODY_LIMIT_BYTES,
    handler: async ({ principal, body }) => {
      const sent = await services.send.mailboxSend({ teamId: principal.teamId, mailboxId: principal.mailboxId }, body);
      return { data: { message_id: sent.messageId, status: 'queued' } };
    },
  });

  defineRoute<MailboxPrincipal>(deps, {
    method: 'POST',
    path: '/mailbox/attachment-uploads',
    surface: 'mailbox',
    handler: async ({ principal, body }) => {
      checkFilename(body.filename);
      const type = mediaType(body.content_type);
      if (!type) throw new AppError('invalid_parameter', 'content_type must be a media type such as application/pdf', { param: 'content_type' });
      const { intent, token } = await uploads.createIntent({
        surface: 'mailbox', teamId: principal.teamId, mailboxId: principal.mailboxId,
        filename: body.filename, contentType: body.content_type, sizeBytes: body.size_bytes,
      });
      const url = `${services.config.publicUrl}/api/v1/mailbox/attachment-uploads/${intent.id}?upload_token=${token}`;
      return {
        data: {
          upload_id: intent.id, upload_url: url, method: 'PUT', expires_at: intent.expires_at,
          headers: { 'Content-Type': body.content_type, 'Content-Length': String(body.size_bytes) },
          max_size_bytes: MAILBOX_UPLOAD_BYTES_MAX,
        },
      };
    },
  });

  registerRawBodyScope(deps.app, MAILBOX_UPLOAD_BYTES_MAX, (child) => {
    const scoped: RouteDeps = { ...deps, app: child };
    defineRoute<MailboxPrincipal>(scoped, {
      method: 'POST',
      path: '/mailbox/attachments:upload',
      surface: 'mailbox',
      bodyLimit: MAILBOX_UPLOAD_BYTES_MAX,
      handler: async ({ principal, query, body, headers }) => {
        const filename = String(query.filename);
        checkFilename(filename);
        const bytes = Buffer.isBuffer(body) ? body : Buffer.alloc(0);
        if (bytes.byteLength === 0) throw new AppError('invalid_parameter', 'The request body (the attachment bytes) is empty');
        const type = mediaType(headers['content-type'] as string | undefined) ?? 'application/octet-stream';
        const row = await uploads.store({ surface: 'mailbox', teamId: principal.teamId, mailboxId: principal.mailboxId, filename, contentType: type, bytes });
        return { data: uploadView(row) };
      },
    });
    registerPresignedPut(child, deps, uploads);
  });
}

/** PUT <upload_url>: no API key; the token, Content-Type and Content-Length are checked before the body is read. */
function registerPresignedPut(app: FastifyInstance, deps: RouteDeps, uploads: UploadsService): void {
  const intents = new WeakMap<FastifyRequest, UploadIntentRow>();
  app.route({
    method: 'PUT',
    url: '/api/v1/mailbox/attachment-uploads/:upload_id',
    bodyLimit: MAILBOX_UPLOAD_BYTES_MAX,
    onRequest: async (req, reply) => {
      const d = deps.limiter.hit('ip', req.ip, deps.rateLimits.unauthenticated);
      reply.header('X-RateLimit-Limit', String(d.limit));
      reply.header('X-RateLimit-Remaining', String(d.remaining));
      reply.header('X-RateLimit-Reset', String(d.resetAt));
      if (!d.allowed) throw new AppError('rate_limit_exceeded', 'Too many requests', { retryAfterSeconds: d.retryAfterSeconds });
      const q = req.query as Record<string, unknown>;
      const token = typeof q.upload_token === 'string' ? q.upload_token : undefined;
      const intent = await uploads.intentForPut('mailbox', (req.params as { upload_id: string }).upload_id, token);
      if (mediaType(req.headers['content-type']) !== mediaType(intent.content_type) || req.headers['content-type']?.trim() !== intent.content_type) {
        throw new AppError('invalid_parameter', `Content-Type must be exactly ${intent.content_type}`, { param: 'Content-Type' });
      }
      const length = contentLengthOf(req);
      if (length === null) throw new AppError('invalid_parameter', 'Content-Length is required', { param: 'Content-Length' });
      if (length !== intent.size_bytes) throw new AppError('invalid_parameter', `Content-Length must be exactly ${intent.size_bytes}`, { param: 'Content-Length' });
      intents.set(req, intent);
    },
    handler: async (req, reply) => {
      const intent = intents.get(req)!;
      const bytes = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const row = await uploads.completeIntent(intent, bytes, intent.content_type ?? 'application/octet-stream');
      return reply.code(200).type('application/json').send({ ok: true, data: uploadView(row), meta: { request_id: req.id } });
    },
  });
}
