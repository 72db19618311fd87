// Runs one generation for a route: admission through the scheduler, the per-request timeout,
// cancellation when the client leaves or the server shuts down, and the metrics every route
// shares (prompt/generated tokens, time to first token, tokens/s). Routes only format.
import { ApiError } from './api-error.js';
import type { DeltaEvent, DoneEvent, Engine, GenerateRequest, GeneratedToken } from './engine.js';
import type { ServerMetrics } from './metrics.js';
import type { Reply } from './reply.js';
import type { Scheduler } from './scheduler.js';

export interface GenerationContext {
  engine: Engine;
  scheduler: Scheduler;
  metrics: ServerMetrics;
  timeoutMs: number;
  /** Aborts generations still running when the shutdown drain period is over. */
  shutdownSignal: AbortSignal;
}

/** What the request log line reports about a generation. */
export interface GenerationStats {
  route: string;
  /** performance.now() when the request arrived. */
  receivedAt: number;
  promptTokens?: number;
  completionTokens?: number;
  queueMs?: number;
  ttftMs?: number;
  finishReason?: string;
  cancelled?: 'client' | 'timeout' | 'shutdown';
}

export async function runGeneration(
  ctx: GenerationContext,
  reply: Reply,
  stats: GenerationStats,
  request: GenerateRequest,
  onDelta: (delta: DeltaEvent) => void
): Promise<DoneEvent> {
  const { metrics, engine } = ctx;
  const timeout = AbortSignal.timeout(ctx.timeoutMs);
  const signal = AbortSignal.any([reply.signal, timeout, ctx.shutdownSignal]);
  let done: DoneEvent | undefined;
  const job = async (): Promise<void> => {
    const startedAt = performance.now();
    stats.queueMs = startedAt - stats.receivedAt;
    if (stats.promptTokens !== undefined) metrics.promptTokens.inc({ route: stats.route }, stats.promptTokens);
    for await (const event of engine.generate(request, signal)) {
      if (signal.aborted) break;
      if (event.type === 'done') {
        done = event;
        continue;
      }
      if (stats.ttftMs === undefined) {
        stats.ttftMs = performance.now() - stats.receivedAt;
        metrics.timeToFirstToken.observe({ route: stats.route }, stats.ttftMs / 1000);
      }
      if (event.tokens.length > 0) metrics.generatedTokens.inc({ route: stats.route }, event.tokens.length);
      onDelta(event);
    }
    const seconds = (performance.now() - startedAt) / 1000;
    if (done && done.usage.completionTokens > 0 && seconds > 0) {
      metrics.tokensPerSecond.observe({ route: stats.route }, done.usage.completionTokens / seconds);
    }
  };
  const cancelled = (): ApiError => {
    const reason = reply.signal.aborted ? 'client' : timeout.aborted ? 'timeout' : 'shutdown';
    stats.cancelled = reason;
    metrics.cancelled.inc({ reason });
    if (reason === 'timeout') {
      return new ApiError(504, `generation did not finish within the ${ctx.timeoutMs / 1000} s request timeout`, {
        type: 'timeout_error',
        code: 'timeout',
      });
    }
    if (reason === 'shutdown')
      return new ApiError(503, 'the server is shutting down', { type: 'unavailable_error', code: 'shutting_down' });
    return new ApiError(499, 'client closed the connection', { code: 'client_closed' });
  };
  try {
    await ctx.scheduler.run(job, signal);
  } catch (err) {
    if (signal.aborted) throw cancelled();
    throw err;
  }
  if (signal.aborted) throw cancelled();
  if (!done) throw new ApiError(500, 'the engine ended without a result', { code: 'internal_error' });
  stats.finishReason = done.finishReason;
  stats.completionTokens = done.usage.completionTokens;
  return done;
}

/** A non-streamed answer: the whole text, every generated token, and the final event. */
export interface CollectedGeneration {
  text: string;
  tokens: GeneratedToken[];
  done: DoneEvent;
}

/** `runGeneration` for the routes that answer once: gathers the deltas into one text. */
export async function collectGeneration(
  ctx: GenerationContext,
  reply: Reply,
  stats: GenerationStats,
  request: GenerateRequest
): Promise<CollectedGeneration> {
  const texts: string[] = [];
  const tokens: GeneratedToken[] = [];
  const done = await runGeneration(ctx, reply, stats, request, (d) => {
    texts.push(d.text);
    tokens.push(...d.tokens);
  });
  return { text: texts.join(''), tokens, done };
}
