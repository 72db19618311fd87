// A minimal HTTP GET on node:http/https. Not `fetch`: downloads need the raw bytes and headers
// exactly as sent (no content decoding, no automatic redirects that drop X-Linked-Etag, no extra
// Accept-Encoding next to a Range), and a socket idle timeout that catches stalled transfers.
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';

/** Idle time after which a connection that sends nothing is given up. */
const IDLE_TIMEOUT_MS = 30_000;

export class NetworkError extends Error {
  /** False when trying again at once cannot help (nothing listens, the host does not exist). */
  readonly retryable: boolean;

  constructor(message: string, options?: { cause?: unknown; retryable?: boolean }) {
    super(message, options);
    this.name = 'NetworkError';
    this.retryable = options?.retryable ?? true;
  }
}

const FINAL_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'CERT_HAS_EXPIRED']);

export function httpGet(url: URL, headers: Record<string, string>, signal?: AbortSignal): Promise<IncomingMessage> {
  const client = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined;
  if (!client) return Promise.reject(new NetworkError(`unsupported protocol in ${url.origin}`));
  return new Promise((resolve, reject) => {
    const req = client.get(url, { headers: { 'User-Agent': 'tinyforge', ...headers }, signal }, resolve);
    req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(new NetworkError(`no data from ${url.host} for ${IDLE_TIMEOUT_MS / 1000} s`)));
    req.on('error', (err) => {
      if (signal?.aborted) reject(signal.reason ?? err);
      else if (err instanceof NetworkError) reject(err);
      else {
        const code = (err as NodeJS.ErrnoException).code;
        const retryable = !code || !FINAL_CODES.has(code);
        reject(new NetworkError(`GET ${url.origin}${url.pathname}: ${code ?? err.message}`, { cause: err, retryable }));
      }
    });
  });
}

/** Reads and discards a response we do not use, so its socket is freed. */
export function discard(res: IncomingMessage): void {
  res.resume();
}
