// The one error type services throw. Each front-end maps `code` to its wire form
// (HTTP status + envelope, SMTP reply, IMAP NO/BAD); internal details never reach the wire.

export const ERROR_CODES = [
  'invalid_parameter',
  'missing_parameter',
  'authentication_required',
  'insufficient_permissions',
  'not_found',
  'conflict',
  'limit_exceeded',
  'idempotency_conflict',
  'payload_too_large',
  'validation_error',
  'rate_limit_exceeded',
  'service_unavailable',
  'internal_error',
  // Sending API only
  'insufficient_credits',
  'billing_restricted',
  'no_active_providers',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface FieldIssue {
  field: string;
  code: string;
  message: string;
}

export interface AppErrorOptions {
  param?: string;
  errors?: FieldIssue[];
  retryable?: boolean;
  retryAfterSeconds?: number;
  /** Headers a front-end should add (e.g. the current ETag on a 409 If-Match conflict). */
  etag?: string;
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly options: AppErrorOptions;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.options = options;
  }
}

export const notFound = (what: string): AppError => new AppError('not_found', `${what} not found`);
export const conflict = (message: string, options?: AppErrorOptions): AppError => new AppError('conflict', message, options);
export const validation = (message: string, errors: FieldIssue[] = []): AppError =>
  new AppError('validation_error', message, { errors, ...(errors[0] ? { param: errors[0].field } : {}) });
export const invalidParameter = (message: string, param?: string): AppError =>
  new AppError('invalid_parameter', message, param === undefined ? {} : { param });
