// The CLI's single error exit: prints `error[CODE]: message` and a hint, and picks an exit code
// scripts can rely on: 1 = the operation failed, 2 = bad usage or bad input, 130 = interrupted.
// Codes come from the one list in ts/error-codes.ts; every code not in this table exits 1.
import type { ErrorCode } from '../ts/error-codes.js';
import { ForgeError, hasCode } from '../ts/errors.js';

const EXIT_CODES: Partial<Record<ErrorCode, 2 | 130>> = {
  INVALID_ARGUMENT: 2,
  INVALID_CONFIG: 2,
  INVALID_DATA: 2,
  FILE_EXISTS: 2,
  CONFIRMATION_REQUIRED: 2,
  UNSAFE_PATH: 2,
  BASE_MISMATCH: 2,
  ABORTED: 130,
};

export function exitCodeFor(err: unknown): number {
  return (hasCode(err) && EXIT_CODES[err.code as ErrorCode]) || 1;
}

export function handleError(err: unknown): never {
  const code = hasCode(err) ? err.code : 'UNEXPECTED';
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`error[${code}]: ${message}\n`);
  if (err instanceof ForgeError && err.suggestion) process.stderr.write(`  hint: ${err.suggestion}\n`);
  if (code === 'UNEXPECTED' && err instanceof Error && err.stack && process.env.LOG_LEVEL === 'debug') {
    process.stderr.write(`${err.stack}\n`);
  }
  process.exit(exitCodeFor(err));
}
