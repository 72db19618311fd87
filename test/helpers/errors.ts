// Asserting coded errors. Every code a test observes must be in the one list (ts/error-codes.ts):
// `codeOf` fails the test on an unlisted code, so a code thrown by any layer and caught by a test
// cannot drift from the list.
import { type ErrorCode, isErrorCode } from '../../ts/error-codes.js';

export type { ErrorCode } from '../../ts/error-codes.js';

function listed(err: unknown): ErrorCode | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === undefined) return undefined;
  if (!isErrorCode(code)) throw new Error(`error code ${String(code)} is not in ts/error-codes.ts (message: ${(err as Error).message})`);
  return code;
}

// The `code` a promise rejects with, or a sync function throws ('no error' when it succeeds).
export async function codeOf(p: Promise<unknown>): Promise<ErrorCode | 'no error' | undefined>;
export function codeOf(fn: () => unknown): ErrorCode | 'no error' | undefined;
export function codeOf(
  p: Promise<unknown> | (() => unknown)
): Promise<ErrorCode | 'no error' | undefined> | ErrorCode | 'no error' | undefined {
  if (typeof p === 'function') {
    try {
      p();
    } catch (err) {
      return listed(err);
    }
    return 'no error';
  }
  return p.then(
    () => 'no error' as const,
    (err: unknown) => listed(err)
  );
}

// An asymmetric matcher for `toThrow`/`rejects.toMatchObject`: the error has this listed code.
export function withCode(code: ErrorCode): { code: ErrorCode } {
  if (!isErrorCode(code)) throw new Error(`${String(code)} is not in ts/error-codes.ts`);
  return { code };
}

// The error a promise rejects with; fails the test if it resolves.
export async function rejection<E = Error>(p: Promise<unknown>): Promise<E> {
  try {
    await p;
  } catch (err) {
    return err as E;
  }
  throw new Error('expected a rejection');
}
