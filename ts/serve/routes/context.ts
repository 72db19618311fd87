// What a route handler gets: the exchange, the request body (already being read: uWS delivers
// body chunks only to a handler attached before the route returns), the engine and the shared
// generation machinery.
import type { Engine } from '../engine.js';
import type { GenerationContext, GenerationStats } from '../generation.js';
import type { Reply } from '../reply.js';

export interface RouteContext {
  reply: Reply;
  body: Promise<Buffer>;
  /** Mutated by the route; the request log line and metrics read it. */
  stats: GenerationStats & { prompt?: unknown };
  engine: Engine;
  generation: GenerationContext;
  /** Keep the prompt for the log line (`--log-prompts`). */
  logPrompts: boolean;
}

export type RouteHandler = (rc: RouteContext) => Promise<void>;
