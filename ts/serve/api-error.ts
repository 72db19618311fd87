// Every non-2xx answer has OpenAI's error shape, so SDKs raise their own typed errors:
//   {"error":{"message": "...", "type": "...", "param": "field" | null, "code": "..." | null}}
import { hasCode } from '../errors.js';

export type ApiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'server_error'
  | 'unavailable_error'
  | 'timeout_error';

export class ApiError extends Error {
  readonly status: number;
  readonly type: ApiErrorType;
  readonly param: string | null;
  readonly code: string | null;
  /** Extra response headers, e.g. Retry-After. */
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    message: string,
    options: { type?: ApiErrorType; param?: string | null; code?: string | null; headers?: Record<string, string> } = {}
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.type = options.type ?? (status >= 500 ? 'server_error' : 'invalid_request_error');
    this.param = options.param ?? null;
    this.code = options.code ?? null;
    this.headers = options.headers ?? {};
  }

  body(): string {
    return JSON.stringify({ error: { message: this.message, type: this.type, param: this.param, code: this.code } });
  }
}

/** A 400 about one request field. */
export function badParam(param: string, message: string, code = 'invalid_value'): ApiError {
  return new ApiError(400, message, { param, code });
}

/**
 * Turns anything thrown while handling a request into an ApiError. Coded input errors from the
 * engine (INVALID_ARGUMENT, CHAT_TEMPLATE_MISSING) are the client's fault; the rest are 500s
 * whose message is kept generic (details go to the log, not to the client).
 */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (hasCode(err)) {
    if (err.code === 'INVALID_ARGUMENT') return new ApiError(400, err.message, { code: 'invalid_value' });
    // A template's raise_exception (e.g. "roles must alternate") is about the messages sent.
    if (err.code === 'CHAT_TEMPLATE')
      return new ApiError(400, `the chat template refused these messages: ${err.message}`, { param: 'messages', code: 'invalid_messages' });
    if (err.code === 'CHAT_TEMPLATE_MISSING') {
      return new ApiError(400, 'this model has no chat template; use /v1/completions with a text prompt', {
        param: 'messages',
        code: 'chat_template_missing',
      });
    }
  }
  return new ApiError(500, 'internal error while generating', { code: 'internal_error' });
}
