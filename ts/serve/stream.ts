// Server-sent events for the OpenAI routes. Nothing is written before the generation starts, so
// a full queue or a timeout in the queue is still a plain JSON error with its status; once the
// stream started, an error travels as a `data: {"error":...}` event (the openai client raises
// it) and the stream still ends with `data: [DONE]`.
import { toApiError } from './api-error.js';
import type { DeltaEvent, DoneEvent, GenerateRequest } from './engine.js';
import { type GenerationContext, type GenerationStats, runGeneration } from './generation.js';
import { SSE_DONE, SSE_HEADERS, sse } from './openai-format.js';
import type { Reply } from './reply.js';

export interface StreamShape {
  /** The opening chunk (chat sends the assistant role), or undefined. */
  first?: () => unknown;
  delta: (delta: DeltaEvent) => unknown;
  finish: (done: DoneEvent) => unknown;
  /** The usage chunk sent when stream_options.include_usage is true. */
  usage?: (done: DoneEvent) => unknown;
}

export async function streamGeneration(
  ctx: GenerationContext,
  reply: Reply,
  stats: GenerationStats,
  request: GenerateRequest,
  shape: StreamShape
): Promise<void> {
  let started = false;
  const begin = (): void => {
    if (started) return;
    started = true;
    reply.write(shape.first ? sse(shape.first()) : '', 200, SSE_HEADERS);
  };
  try {
    const done = await runGeneration(ctx, reply, stats, request, (delta) => {
      begin();
      reply.write(sse(shape.delta(delta)));
    });
    begin();
    reply.write(sse(shape.finish(done)));
    if (shape.usage) reply.write(sse(shape.usage(done)));
    reply.write(SSE_DONE);
    reply.end();
  } catch (err) {
    if (!reply.headersSent) throw err;
    const apiError = toApiError(err);
    reply.write(`data: ${apiError.body()}\n\n`);
    reply.write(SSE_DONE);
    reply.end();
  }
}
