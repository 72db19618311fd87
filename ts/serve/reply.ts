// One HTTP exchange over uWebSockets.js, with its rules kept in one place:
//   - onAborted is registered before the handler returns (uWS terminates the process otherwise);
//   - `res` is never touched after the client went away or after the response ended (uWS frees
//     it then, and a late write crashes);
//   - every write from an async continuation is corked (one syscall per burst).
// `signal` aborts when the client disconnects, so the engine can stop working for nobody.
import { ApiError } from './api-error.js';
import type { HttpResponse } from './uws.js';

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  204: 'No Content',
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

const CLIENT_CLOSED = new ApiError(499, 'client closed the connection', { code: 'client_closed' });

export class Reply {
  /** Set when the client disconnected before the response ended. */
  aborted = false;
  /** Set once the response ended (or was closed). */
  ended = false;
  /** The status sent (0 until headers went out). */
  status = 0;
  /** Headers added to every response (CORS, request id). */
  readonly headers: Record<string, string> = {};
  // Created on first use: most exchanges (GETs, fast errors) never need a signal.
  private controller: AbortController | undefined;
  private readonly finishers: Array<() => void> = [];
  private streaming = false;

  constructor(private readonly res: HttpResponse) {
    res.onAborted(() => {
      this.aborted = true;
      this.controller?.abort(CLIENT_CLOSED);
      this.finish();
    });
  }

  /** Aborts when the client disconnects. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(CLIENT_CLOSED);
    }
    return this.controller.signal;
  }

  /** True while writing is still allowed. */
  get open(): boolean {
    return !this.aborted && !this.ended;
  }

  /** Runs once, when the response ended or the client went away. */
  onFinish(fn: () => void): void {
    this.finishers.push(fn);
  }

  private finish(): void {
    for (const fn of this.finishers.splice(0)) fn();
  }

  private writeHead(status: number, headers: Record<string, string>): void {
    this.status = status;
    this.res.writeStatus(`${status} ${STATUS_TEXT[status] ?? ''}`);
    // Per-response headers win over the shared ones (no merged copy: this runs per request).
    for (const k in this.headers) if (!(k in headers)) this.res.writeHeader(k, this.headers[k] as string);
    for (const k in headers) this.res.writeHeader(k, headers[k] as string);
  }

  /** Sends a whole response. No-op when the client is gone or a response was already sent. */
  send(status: number, body: string, headers: Record<string, string> = {}, closeConnection = false): void {
    if (!this.open) return;
    this.res.cork(() => {
      if (this.streaming) {
        this.res.end(body);
      } else {
        this.writeHead(status, headers);
        this.res.end(body, closeConnection);
      }
    });
    this.ended = true;
    this.finish();
  }

  json(status: number, value: unknown, headers: Record<string, string> = {}): void {
    this.send(status, JSON.stringify(value), { 'Content-Type': 'application/json', ...headers });
  }

  error(err: ApiError, closeConnection = false): void {
    this.send(err.status, err.body(), { 'Content-Type': 'application/json', ...err.headers }, closeConnection);
  }

  /** True once streaming started: errors must then travel inside the stream. */
  get headersSent(): boolean {
    return this.streaming;
  }

  /**
   * Writes `chunk` of a streamed (chunked) response, sending status and headers first. Small
   * SSE events are buffered by uWS under backpressure; a client that stops reading for long is
   * bounded by the per-request timeout.
   */
  write(chunk: string, status = 200, headers: Record<string, string> = {}): void {
    if (!this.open) return;
    this.res.cork(() => {
      if (!this.streaming) this.writeHead(status, headers);
      this.streaming = true;
      this.res.write(chunk);
    });
  }

  /** Ends a streamed response. */
  end(): void {
    this.send(200, '');
  }

  /**
   * Reads the request body (uWS hands it in chunks it reuses, so each is copied). Rejects with
   * 413 past `limit` bytes and with the abort reason when the client goes away.
   */
  readBody(limit: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let failed = false;
      this.signal.addEventListener('abort', () => reject(this.signal.reason), { once: true });
      this.res.onData((chunk, isLast) => {
        if (failed) return;
        size += chunk.byteLength;
        if (size > limit) {
          failed = true;
          reject(new ApiError(413, `request body is larger than ${limit} bytes`, { code: 'body_too_large' }));
          return;
        }
        chunks.push(Buffer.from(new Uint8Array(chunk)));
        if (isLast) resolve(Buffer.concat(chunks, size));
      });
    });
  }
}
