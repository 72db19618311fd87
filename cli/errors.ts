// The CLI's single error exit: prints `error[CODE]: message` and a hint, and picks an exit code
// scripts can rely on: 1 = the operation failed, 2 = bad usage or bad input, 130 = interrupted.
import { ForgeError, hasCode } from '../ts/errors.js';

const USAGE_CODES = new Set(['INVALID_ARGUMENT', 'USAGE', 'INVALID_CONFIG', 'INVALID_DATA', 'FILE_EXISTS', 'CONFIRMATION_REQUIRED', 'UNSAFE_PATH', 'BASE_MISMATCH']);

export function exitCodeFor(err: unknown): number {
  if (hasCode(err)) {
    if (err.code === 'ABORTED') return 130;
    if (USAGE_CODES.has(err.code)) return 2;
  }
  return 1;
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
