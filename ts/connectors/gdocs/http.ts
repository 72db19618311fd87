// GET JSON from a Google API with the retry policy Google documents: exponential backoff with
// jitter on 429 and 5xx (and dropped connections), honouring Retry-After. Final failures become
// coded errors; no token or key ever appears in their text (see ../redact.ts).
import { ForgeError } from '../../errors.js';
import { redact } from '../redact.js';

export interface RetryPolicy {
  /** Retries after the first attempt. @default 5 */
  retries?: number;
  /** First backoff; doubles per retry. @default 500 */
  baseDelayMs?: number;
  /** Longest single wait, Retry-After included. @default 32000 */
  maxDelayMs?: number;
  /** Per-request timeout. @default 60000 */
  timeoutMs?: number;
}

export interface RequestContext {
  /** Names the thing asked for in errors: `document 1AbC`, `folder 0XyZ`. */
  what: string;
  policy?: RetryPolicy;
  /** Test hook: replaces setTimeout-based sleeping. */
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const secs = Number(header);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function googleMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: { message?: string } | string; error_description?: string };
    if (typeof parsed.error === 'object' && parsed.error?.message) return parsed.error.message;
    if (parsed.error_description) return parsed.error_description;
    if (typeof parsed.error === 'string') return parsed.error;
  } catch {
    // not JSON: fall through
  }
  return body.slice(0, 200);
}

export function httpError(status: number, what: string, body: string): ForgeError {
  const detail = redact(googleMessage(body));
  switch (status) {
    case 401:
      return new ForgeError('GDOCS_UNAUTHORIZED', `Google rejected the credentials for ${what} (401): ${detail}`, {
        suggestion: 'refresh GOOGLE_OAUTH_TOKEN, or check the service-account key (GOOGLE_APPLICATION_CREDENTIALS)',
      });
    case 403:
      return new ForgeError('GDOCS_FORBIDDEN', `no access to ${what} (403): ${detail}`, {
        suggestion: "share the document or folder with the account (the service account's client_email) and enable the Docs and Drive APIs",
      });
    case 404:
      return new ForgeError('NOT_FOUND', `${what} not found (404)`, {
        suggestion: 'check the id (the part of the URL after /d/ or /folders/) and that the account can see it',
      });
    case 429:
      return new ForgeError('GDOCS_RATE_LIMITED', `rate limited on ${what} after retries (429): ${detail}`, {
        suggestion: 'wait a minute and run again, or raise the Docs API quota',
      });
    default:
      return new ForgeError(status >= 500 ? 'GDOCS_UNAVAILABLE' : 'GDOCS_HTTP_ERROR', `${what}: HTTP ${status}: ${detail}`, {
        suggestion: status >= 500 ? 'Google is having trouble: try again later' : 'check the request options',
      });
  }
}

/** GET (or POST a form, for token exchange) with retries; returns the parsed JSON body. */
export async function requestJson<T>(
  url: string,
  init: { headers?: Record<string, string>; method?: string; body?: string },
  ctx: RequestContext
): Promise<T> {
  const retries = ctx.policy?.retries ?? 5;
  const base = ctx.policy?.baseDelayMs ?? 500;
  const max = ctx.policy?.maxDelayMs ?? 32_000;
  const sleep = ctx.sleep ?? defaultSleep;
  for (let attempt = 0; ; attempt++) {
    let response: Response;
    try {
      response = await fetch(url, { ...init, signal: AbortSignal.timeout(ctx.policy?.timeoutMs ?? 60_000) });
    } catch (err) {
      if (attempt < retries) {
        await sleep(Math.random() * Math.min(max, base * 2 ** attempt));
        continue;
      }
      throw new ForgeError('GDOCS_UNAVAILABLE', `cannot reach Google for ${ctx.what}: ${redact((err as Error).message)}`, {
        suggestion: 'check the network (or use --mock DIR to work offline)',
      });
    }
    if (response.ok) return (await response.json()) as T;
    const body = await response.text();
    const retryable = response.status === 429 || response.status >= 500;
    if (retryable && attempt < retries) {
      // Full jitter spreads out clients that failed together; Retry-After is a floor when given.
      const backoff = Math.random() * Math.min(max, base * 2 ** attempt);
      const hinted = retryAfterMs(response.headers.get('retry-after'));
      await sleep(Math.min(max, Math.max(backoff, hinted ?? 0)));
      continue;
    }
    throw httpError(response.status, ctx.what, body);
  }
}
