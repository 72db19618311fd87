// The inference HTTP service over uWebSockets.js. It listens before the model is loaded (so
// /health answers and /ready says 503 while loading), then serves whatever `Engine` it is given.
// Cross-cutting rules live here, once: API key, CORS, the ready/draining gates, error shape,
// one log line and the HTTP metrics per request, graceful shutdown.
import { ApiError, toApiError } from './api-error.js';
import { bearerChecker, unauthorized } from './auth.js';
import type { Engine } from './engine.js';
import type { GenerationContext } from './generation.js';
import { type Logger, createLogger } from './log.js';
import { ServerMetrics } from './metrics.js';
import { newId } from './openai-format.js';
import { Reply } from './reply.js';
import { chatCompletions } from './routes/chat-completions.js';
import { completions } from './routes/completions.js';
import type { RouteContext, RouteHandler } from './routes/context.js';
import { predict } from './routes/predict.js';
import { Scheduler } from './scheduler.js';
import { type HttpRequest, type HttpResponse, type TemplatedApp, type us_listen_socket, loadUws } from './uws.js';

export interface ServerOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @default 8001 */
  port?: number;
  /** Require `Authorization: Bearer <apiKey>` on every route but /health. */
  apiKey?: string;
  /** Access-Control-Allow-Origin value; CORS is off when undefined. */
  corsOrigin?: string;
  /** Generations running at once (the engine may cap it lower). @default 8 */
  maxBatch?: number;
  /** Generations waiting for a slot; one more gets 503. @default 64 */
  maxQueue?: number;
  /** Per-request limit, queue wait included. @default 120_000 */
  timeoutMs?: number;
  /** @default 1 MiB */
  bodyLimitBytes?: number;
  /** How long SIGTERM waits for in-flight requests. @default 30_000 */
  drainTimeoutMs?: number;
  /** Put prompts in the request log. @default false */
  logPrompts?: boolean;
  logger?: Logger;
}

interface RouteOptions {
  /** Needs a loaded engine (503 while loading). */
  engine?: boolean;
  /** Starts a generation (refused while draining). */
  generation?: boolean;
  /** Skips the API key (only /health). */
  public?: boolean;
}

const KNOWN_METHODS = new Set(['get', 'post', 'put', 'patch', 'delete', 'head', 'options']);
const PROBE_ROUTES = new Set(['/ready', '/metrics']);

const roundMs = (seconds: number): number => Math.round(seconds * 10_000) / 10;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class InferenceServer {
  readonly metrics = new ServerMetrics();
  readonly transport: 'native' | 'fallback';
  private readonly uws: ReturnType<typeof loadUws>['uws'];
  private readonly app: TemplatedApp;
  private readonly options: Required<Omit<ServerOptions, 'apiKey' | 'corsOrigin' | 'logger'>> &
    Pick<ServerOptions, 'apiKey' | 'corsOrigin'>;
  private readonly log: Logger;
  private readonly checkKey: ((authorization: string) => boolean) | undefined;
  private readonly shutdownController = new AbortController();
  private readonly inflight = new Set<Reply>();
  private engine: Engine | undefined;
  private scheduler: Scheduler;
  private listenSocket: us_listen_socket | undefined;
  private draining = false;
  private closing: Promise<void> | undefined;
  private boundPort = 0;

  constructor(options: ServerOptions = {}) {
    this.options = {
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 8001,
      maxBatch: options.maxBatch ?? 8,
      maxQueue: options.maxQueue ?? 64,
      timeoutMs: options.timeoutMs ?? 120_000,
      bodyLimitBytes: options.bodyLimitBytes ?? 1024 * 1024,
      drainTimeoutMs: options.drainTimeoutMs ?? 30_000,
      logPrompts: options.logPrompts ?? false,
      apiKey: options.apiKey,
      corsOrigin: options.corsOrigin,
    };
    this.log = options.logger ?? createLogger();
    this.checkKey = options.apiKey ? bearerChecker(options.apiKey) : undefined;
    const { uws, transport } = loadUws();
    this.uws = uws;
    this.transport = transport;
    this.scheduler = new Scheduler(this.options.maxBatch, this.options.maxQueue, this.metrics);
    this.metrics.ready.set(0);
    this.app = uws.App();
    this.routes();
  }

  get port(): number {
    return this.boundPort;
  }

  get ready(): boolean {
    return this.engine !== undefined && !this.draining;
  }

  listen(): Promise<number> {
    const { host, port } = this.options;
    return new Promise((resolve, reject) => {
      this.app.listen(host, port, (socket) => {
        if (!socket) {
          reject(new ApiError(500, `cannot listen on ${host}:${port} (in use or not permitted)`, { code: 'listen_failed' }));
          return;
        }
        this.listenSocket = socket;
        this.boundPort = this.uws.us_socket_local_port(socket as never);
        // sinceStartMs: since the process started (performance's time origin), for cold starts.
        this.log.info('listening', { host, port: this.boundPort, transport: this.transport, sinceStartMs: Math.round(performance.now()) });
        // The process metrics' modules load now, while the model loads on its own threads.
        setImmediate(() => void this.metrics.loadDefaults());
        resolve(this.boundPort);
      });
    });
  }

  /** Starts serving generations with `engine` (the server answers 503 on them until then). */
  setEngine(engine: Engine): void {
    if (this.draining) return;
    this.engine = engine;
    // More than the engine runs at once would only queue inside it, invisible to the gauges and
    // to the 503 logic.
    const maxActive = Math.min(this.options.maxBatch, engine.info.maxConcurrency);
    this.scheduler = new Scheduler(maxActive, this.options.maxQueue, this.metrics);
    this.metrics.loadSeconds.set(engine.info.loadSeconds);
    this.metrics.ready.set(1);
    this.log.info('ready', {
      model: engine.info.id,
      engine: engine.info.engine,
      contextLength: engine.info.contextLength,
      loadSeconds: engine.info.loadSeconds,
      sinceStartMs: Math.round(performance.now()),
      maxActive,
      maxQueue: this.options.maxQueue,
    });
  }

  /**
   * Stops accepting connections, lets in-flight requests finish for up to `drainTimeoutMs`,
   * then cancels what is left, closes every connection and the engine. Idempotent.
   */
  shutdown(): Promise<void> {
    this.closing ??= (async () => {
      this.draining = true;
      this.metrics.ready.set(0);
      if (this.listenSocket) this.uws.us_listen_socket_close(this.listenSocket);
      this.listenSocket = undefined;
      const inFlight = this.inflight.size;
      this.log.info('draining', { inFlight, timeoutMs: this.options.drainTimeoutMs });
      const deadline = performance.now() + this.options.drainTimeoutMs;
      while ((this.inflight.size > 0 || this.scheduler.activeCount > 0) && performance.now() < deadline) await sleep(20);
      if (this.inflight.size > 0) {
        this.shutdownController.abort(
          new ApiError(503, 'the server is shutting down', { type: 'unavailable_error', code: 'shutting_down' })
        );
        // Cancelled requests answer within a tick; bounded anyway.
        for (let i = 0; i < 50 && this.inflight.size > 0; i++) await sleep(20);
      }
      (this.app as TemplatedApp & { close?: () => void }).close?.();
      await this.engine?.close();
      this.log.info('stopped', { drained: inFlight });
    })();
    return this.closing;
  }

  private generationContext(engine: Engine): GenerationContext {
    return {
      engine,
      scheduler: this.scheduler,
      metrics: this.metrics,
      timeoutMs: this.options.timeoutMs,
      shutdownSignal: this.shutdownController.signal,
    };
  }

  private routes(): void {
    const app = this.app;
    app.get('/health', this.health());
    app.get(
      '/ready',
      this.route('/ready', {}, async ({ reply }) => this.readyRoute(reply))
    );
    app.get(
      '/metrics',
      this.route('/metrics', {}, async ({ reply }) => {
        const text = await this.metrics.text();
        reply.send(200, text, { 'Content-Type': this.metrics.registry.contentType });
      })
    );
    app.get(
      '/v1/models',
      this.route('/v1/models', { engine: true }, async ({ reply, engine }) =>
        reply.json(200, { object: 'list', data: [modelCard(engine)] })
      )
    );
    app.get(
      '/v1/models/:id',
      this.route('/v1/models/:id', { engine: true }, async ({ reply, engine, stats }) => {
        const raw = (stats as { param?: string }).param ?? '';
        let id = raw;
        try {
          id = decodeURIComponent(raw);
        } catch {
          // A malformed %-escape names no model we serve: the 404 below, not a 500.
        }
        if (id !== engine.info.id)
          throw new ApiError(404, `The model \`${id}\` does not exist`, { param: 'model', code: 'model_not_found' });
        reply.json(200, modelCard(engine));
      })
    );
    app.post('/predict', this.route('/predict', { engine: true, generation: true }, predict));
    app.post('/v1/chat/completions', this.route('/v1/chat/completions', { engine: true, generation: true }, chatCompletions));
    app.post('/v1/completions', this.route('/v1/completions', { engine: true, generation: true }, completions));
    app.options(
      '/*',
      this.route('preflight', { public: true }, async ({ reply }) => {
        if (this.options.corsOrigin === undefined)
          throw new ApiError(405, 'CORS is not enabled on this server (start it with --cors)', { code: 'method_not_allowed' });
        reply.send(204, '', {
          'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
          'Access-Control-Allow-Headers': 'Authorization, Content-Type, X-Request-Id',
          'Access-Control-Max-Age': '600',
        });
      })
    );
    app.any(
      '/*',
      this.route('unknown', { public: true }, async () => {
        throw new ApiError(404, 'no such route; see GET /v1/models, POST /v1/chat/completions, /v1/completions, /predict', {
          code: 'not_found',
        });
      })
    );
  }

  /**
   * GET /health: liveness, no key, no engine, answered before the handler returns. It skips what
   * the other routes share (Reply, request id, gates, a promise) because load balancers and
   * container runtimes call it every few seconds on every replica; with all of that it cost 13 us
   * of CPU per request against raw uWebSockets.js's 1.4 us (pipelined load, --cpu-prof), a third
   * of its throughput. It is still counted in the request and latency metrics (its series is
   * looked up once); its log line is at debug level, like llama-server, which does not log
   * health probes at all. An X-Request-Id sent by the client is echoed; none is made up.
   */
  private health(): (res: HttpResponse, req: HttpRequest) => void {
    const body = JSON.stringify({ status: 'ok', transport: this.transport });
    const series = this.metrics.http.get('/health', 'get', 200);
    const cors = this.options.corsOrigin;
    const logged = this.log.enabled?.('debug') ?? true;
    return (res, req) => {
      const receivedAt = performance.now();
      const requestId = req.getHeader('x-request-id');
      res.cork(() => {
        res.writeStatus('200 OK').writeHeader('Content-Type', 'application/json');
        if (requestId !== '') res.writeHeader('X-Request-Id', requestId);
        if (cors !== undefined) res.writeHeader('Access-Control-Allow-Origin', cors).writeHeader('Vary', 'Origin');
        res.end(body);
      });
      const seconds = (performance.now() - receivedAt) / 1000;
      series.observe(seconds);
      if (logged)
        this.log.debug('request', {
          ...(requestId === '' ? {} : { id: requestId }),
          method: 'get',
          path: '/health',
          route: '/health',
          status: 200,
          ms: roundMs(seconds),
        });
    };
  }

  private readyRoute(reply: Reply): void {
    if (this.ready) {
      reply.json(200, { status: 'ready', model: this.engine?.info.id });
      return;
    }
    const why = this.draining ? 'shutting down' : 'loading the model';
    throw new ApiError(503, `not ready: ${why}`, {
      type: 'unavailable_error',
      code: this.draining ? 'shutting_down' : 'model_loading',
      headers: { 'Retry-After': '1' },
    });
  }

  private route(name: string, opts: RouteOptions, handler: RouteHandler): (res: HttpResponse, req: HttpRequest) => void {
    return (res, req) => {
      const receivedAt = performance.now();
      // HttpRequest is only valid until this function returns: read everything now.
      // uWS gives 'post'; the package's Node-http fallback gives 'POST'.
      const method = req.getMethod().toLowerCase();
      const path = req.getUrl();
      const authorization = req.getHeader('authorization');
      const contentLength = req.getHeader('content-length');
      const requestId = req.getHeader('x-request-id') || newId('req');
      const param = name === '/v1/models/:id' ? req.getParameter(0) : undefined;
      const reply = new Reply(res);
      reply.headers['X-Request-Id'] = requestId;
      if (this.options.corsOrigin !== undefined) {
        reply.headers['Access-Control-Allow-Origin'] = this.options.corsOrigin;
        reply.headers.Vary = 'Origin';
      }
      const stats: RouteContext['stats'] & { param?: string } = { route: name, receivedAt, ...(param === undefined ? {} : { param }) };
      this.inflight.add(reply);
      reply.onFinish(() => {
        this.inflight.delete(reply);
        this.finished(reply, stats, method, path, requestId);
      });
      // uWS hands body chunks only to a handler attached now; an early answer just drops them.
      const body = method === 'post' ? reply.readBody(this.options.bodyLimitBytes) : Promise.resolve(Buffer.alloc(0));
      body.catch(() => undefined);
      try {
        this.gate(opts, authorization, contentLength);
      } catch (err) {
        reply.error(toApiError(err), err instanceof ApiError && err.status === 413);
        return;
      }
      const engine = this.engine as Engine;
      const rc: RouteContext = {
        reply,
        body,
        stats,
        engine,
        generation: this.generationContext(engine),
        logPrompts: this.options.logPrompts,
      };
      handler(rc).catch((err: unknown) => {
        const apiError = toApiError(err);
        if (apiError.code === 'internal_error')
          this.log.error('request failed', { requestId, route: name, error: err instanceof Error ? err.stack : String(err) });
        // A 413 met while reading the body leaves unread bytes on the connection: close it.
        reply.error(apiError, apiError.status === 413);
      });
    };
  }

  /** The checks every request passes before its handler, in the order a client should fix them. */
  private gate(opts: RouteOptions, authorization: string, contentLength: string): void {
    if (!opts.public && this.checkKey && !this.checkKey(authorization)) throw unauthorized(authorization !== '');
    if (contentLength !== '' && Number(contentLength) > this.options.bodyLimitBytes) {
      throw new ApiError(413, `request body is ${contentLength} bytes; the limit is ${this.options.bodyLimitBytes}`, {
        code: 'body_too_large',
      });
    }
    if (opts.generation && this.draining) {
      this.metrics.rejected.inc({ reason: 'shutting_down' });
      throw new ApiError(503, 'the server is shutting down', { type: 'unavailable_error', code: 'shutting_down' });
    }
    if (opts.engine && !this.engine) {
      throw new ApiError(503, 'the model is still loading (see GET /ready)', {
        type: 'unavailable_error',
        code: 'model_loading',
        headers: { 'Retry-After': '1' },
      });
    }
  }

  private finished(reply: Reply, stats: RouteContext['stats'], method: string, path: string, requestId: string): void {
    // 499: the client closed the connection first (nginx's convention).
    const status = reply.aborted ? 499 : reply.status;
    const seconds = (performance.now() - stats.receivedAt) / 1000;
    // Clients choose the method: unknown ones share a label so they cannot grow the series set.
    this.metrics.http.get(stats.route, KNOWN_METHODS.has(method) ? method : 'other', status).observe(seconds);
    // Probes that succeed (readiness checks, Prometheus scrapes) would be most of an idle
    // server's log: debug level, like /health. Their failures (401, 503) stay at info.
    const level = PROBE_ROUTES.has(stats.route) && status < 300 ? 'debug' : 'info';
    this.log[level]('request', {
      id: requestId,
      method,
      path,
      route: stats.route,
      status,
      ms: roundMs(seconds),
      ...(stats.promptTokens === undefined ? {} : { promptTokens: stats.promptTokens }),
      ...(stats.completionTokens === undefined ? {} : { completionTokens: stats.completionTokens }),
      ...(stats.queueMs === undefined ? {} : { queueMs: Math.round(stats.queueMs) }),
      ...(stats.ttftMs === undefined ? {} : { ttftMs: Math.round(stats.ttftMs) }),
      ...(stats.finishReason === undefined ? {} : { finishReason: stats.finishReason }),
      // onAborted runs before the route learns of the abort, so the client case is known here.
      ...(stats.cancelled === undefined && !reply.aborted ? {} : { cancelled: stats.cancelled ?? 'client' }),
      ...(stats.prompt === undefined ? {} : { prompt: stats.prompt }),
    });
  }
}

function modelCard(engine: Engine) {
  const { id, created, engine: kind, contextLength } = engine.info;
  return { id, object: 'model', created, owned_by: 'tinyforge', engine: kind, context_length: contextLength };
}
