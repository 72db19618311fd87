// One error type for the whole TypeScript layer: a stable `code` for scripts and tests, and a
// `suggestion` telling the user what to do next. The CLI's `handleError` prints both. Codes come
// from the one list in error-codes.ts.
import type { ErrorCode } from './error-codes.js';

export type { ErrorCode } from './error-codes.js';

export class ForgeError extends Error {
  readonly code: ErrorCode;
  readonly suggestion: string | undefined;

  constructor(code: ErrorCode, message: string, options: { suggestion?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ForgeError';
    this.code = code;
    this.suggestion = options.suggestion;
  }
}

/** True for errors that carry a stable code (ForgeError, or native errors from @tinyforge/native). */
export function hasCode(err: unknown): err is Error & { code: string } {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string';
}
