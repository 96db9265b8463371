// The HTTP error map: AppError codes to status, `retryable`, and the spec's error envelope.
import type { ErrorCode, FieldIssue } from '../../core/errors.ts';

export const STATUS_OF: Record<ErrorCode, number> = {
  invalid_parameter: 400,
  missing_parameter: 400,
  authentication_required: 401,
  insufficient_credits: 402,
  insufficient_permissions: 403,
  billing_restricted: 403,
  not_found: 404,
  conflict: 409,
  limit_exceeded: 409,
  idempotency_conflict: 409,
  payload_too_large: 413,
  validation_error: 422,
  rate_limit_exceeded: 429,
  internal_error: 500,
  service_unavailable: 503,
  no_active_providers: 503,
};

/** 429 and 5xx may be retried; other 4xx may not. */
export function retryableByDefault(status: number): boolean {
  return status === 429 || status >= 500;
}

export interface ErrorBody {
  ok: false;
  error: { code: ErrorCode; message: string; retryable: boolean; param?: string; errors?: FieldIssue[] };
  meta: { request_id: string };
}

export function errorBody(requestId: string, code: ErrorCode, message: string, extra: { param?: string; errors?: FieldIssue[]; retryable?: boolean } = {}): ErrorBody {
  const status = STATUS_OF[code];
  const error: ErrorBody['error'] = { code, message, retryable: extra.retryable ?? retryableByDefault(status) };
  const param = extra.param ?? extra.errors?.[0]?.field;
  if (param !== undefined) error.param = param;
  if (extra.errors && extra.errors.length > 0 && (status === 400 || status === 422)) error.errors = extra.errors;
  return { ok: false, error, meta: { request_id: requestId } };
}
