// The inference service: `InferenceServer` (HTTP over uWebSockets.js) in front of an `Engine`,
// and `startService` that wires them the way `foremforge serve` runs them.
export type {
  DeltaEvent,
  DoneEvent,
  Engine,
  EngineEvent,
  EngineInfo,
  EngineMessage,
  EnginePrompt,
  FinishReason,
  GenerateRequest,
  GeneratedToken,
  SamplingParams,
  TopLogprob,
} from './engine.js';
export { type LoadEngineOptions, type ServeTarget, loadEngine, resolveServeTarget } from './load-engine.js';
export { type Logger, createLogger, parseLogLevel } from './log.js';
export { InferenceServer, type ServerOptions } from './server.js';
export { type ServiceOptions, startService } from './service.js';
