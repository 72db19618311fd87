// The contract between the HTTP service and whatever generates text. The server knows nothing
// else about the model: an engine loads once, reports what it can do in `info`, counts prompt
// tokens, and streams a generation as events, ending with exactly one `done` event.
//
// Two implementations are planned: `engines/candle.ts` (today, over the native candle
// `Generator`; one event with the whole completion) and the ONNX Runtime `InferenceSession`
// (continuous batching, token-by-token streaming, cancellation at the next decode step).
// `load-engine.ts` is the one place that picks between them.

/** One chat turn, already flattened to text (content parts joined by the request parser). */
export interface EngineMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/**
 * What to continue. `messages` are rendered with the model's chat template (generation prompt
 * added); `text` is continued raw, with the tokenizer's own special tokens (e.g. BOS) added.
 */
export type EnginePrompt = { kind: 'text'; text: string } | { kind: 'messages'; messages: EngineMessage[] };

/** Sampling and stopping. The server fills every field (its defaults), engines need not guess. */
export interface SamplingParams {
  /** Already capped by the server so that prompt + maxTokens <= contextLength. */
  maxTokens: number;
  /** 0 = greedy. */
  temperature: number;
  /** In (0, 1]; 1 = off. */
  topP: number;
  /** 0 = off. */
  topK: number;
  /** In [0, 1); 0 = off. */
  minP: number;
  /** > 0; 1 = off. */
  repetitionPenalty: number;
  /** In [-2, 2]; 0 = off (OpenAI semantics: subtract penalty x count from the logit). */
  frequencyPenalty: number;
  /** In [-2, 2]; 0 = off (subtract once for any token already generated). */
  presencePenalty: number;
  /** Same seed, same params, same model -> same tokens. */
  seed: number;
  /** Generation ends when the text contains one; the returned text stops before it. */
  stop: string[];
  /** How many alternatives to report per generated token (0 = none); <= info.maxTopLogprobs. */
  topLogprobs: number;
}

export interface GenerateRequest {
  prompt: EnginePrompt;
  params: SamplingParams;
}

export interface TopLogprob {
  tokenId: number;
  /** The token's own text (may be a partial UTF-8 sequence rendered with U+FFFD). */
  text: string;
  logprob: number;
}

export interface GeneratedToken {
  tokenId: number;
  text: string;
  /** Natural log of the probability the model gave this token when it was chosen. */
  logprob: number;
  /** Present when `params.topLogprobs > 0`, most likely first. */
  topLogprobs?: TopLogprob[];
}

/**
 * Newly generated text and the tokens it came from. `text` may be '' while a UTF-8 character is
 * incomplete, and a stop string is never part of it; concatenating every delta gives the
 * completion. A streaming engine sends one per token; the candle engine sends one in total.
 */
export interface DeltaEvent {
  type: 'delta';
  text: string;
  tokens: GeneratedToken[];
}

/** 'stop' = EOS or a stop string; 'length' = maxTokens or the context window. */
export type FinishReason = 'stop' | 'length';

export interface DoneEvent {
  type: 'done';
  finishReason: FinishReason;
  usage: { promptTokens: number; completionTokens: number };
  /** exp(mean log-probability of the generated tokens), in (0, 1]; 0 when nothing was generated. */
  confidence: number;
}

export type EngineEvent = DeltaEvent | DoneEvent;

export interface EngineInfo {
  /** The name clients put in `model` and see in /v1/models. */
  id: string;
  /** Which implementation answers ('candle' or 'ort'), for /v1/models and logs. */
  engine: string;
  /** Prompt + completion tokens the model can attend to. */
  contextLength: number;
  /** Unix seconds the model was loaded. */
  created: number;
  /** Seconds `load` took. */
  loadSeconds: number;
  /** Largest `topLogprobs` the engine reports (0: only the chosen token's logprob). */
  maxTopLogprobs: number;
  /** Sampling fields the engine honours beyond maxTokens/temperature/topP/seed/stop. */
  samplers: ReadonlySet<'topK' | 'minP' | 'repetitionPenalty' | 'frequencyPenalty' | 'presencePenalty'>;
  /**
   * Generations the engine runs at once (the server queues the rest, visibly, in its own
   * bounded queue). The ORT engine: its batch size; candle: 2.
   */
  maxConcurrency: number;
  /** The tokenizer has a chat template, so `messages` prompts work. */
  chatTemplate: boolean;
  /** True when deltas arrive token by token (false: one delta at the end). */
  streaming: boolean;
  /**
   * True when aborting `signal` stops the computation at the next step. False (candle): the
   * generation runs to its end in the background and its slot stays busy until then.
   */
  cancellable: boolean;
}

export interface Engine {
  readonly info: EngineInfo;
  /**
   * Streams one generation. The last event is `done`; after `signal` aborts, the iterator ends
   * (or throws an AbortError) without further events as soon as the engine can stop. Rejects
   * with a coded error (`INVALID_ARGUMENT`, `GENERATION_FAILED`, ...) on bad input.
   */
  generate(request: GenerateRequest, signal: AbortSignal): AsyncIterable<EngineEvent>;
  /** Tokens the prompt occupies exactly as `generate` would feed it (template and BOS included). */
  countTokens(prompt: EnginePrompt): number;
  /**
   * Frees the model. The server calls it at shutdown after aborting what still runs, so it must
   * wait for (or stop) generations in flight rather than free memory under them.
   */
  close(): Promise<void>;
}
