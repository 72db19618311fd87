// INTERIM engine: serves through the native candle `Generator` (crates/node/src/generate.rs)
// until the ONNX Runtime `InferenceSession` lands. What that means for a client:
//   - not streaming: the Generator returns the whole completion, so `generate` yields one delta
//     (all tokens) and then `done`; SSE clients get the text in one chunk;
//   - not cancellable: a native call cannot be stopped, so after an abort the generation runs to
//     its end on its libuv thread and its scheduler slot stays busy until then (the HTTP side
//     stops waiting at once; requests still queued are cancelled before they start);
//   - no top_logprobs (the Generator reports only the chosen token's probability), no min_p and
//     no frequency/presence penalties (`info.samplers` says so; the server answers 400).
// Each request runs on a libuv thread; concurrent requests run in parallel, not batched.
import type { Generator, Tokenizer } from '@tinyforge/native';
import { ForgeError } from '../../errors.js';
import { native } from '../../native.js';
import type { Engine, EngineEvent, EngineInfo, EnginePrompt, GenerateRequest, GeneratedToken } from '../engine.js';

export interface CandleEngineOptions {
  /** HF folder or GGUF file. */
  model: string;
  /** PEFT adapter folder merged in at load. */
  adapter?: string;
  /** Name shown to clients (default: the folder or file name). */
  id: string;
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new ForgeError('ABORTED', 'generation aborted');
}

export class CandleEngine implements Engine {
  readonly info: EngineInfo;
  private readonly generator: Generator;
  private readonly tokenizer: Tokenizer;

  private constructor(info: EngineInfo, generator: Generator, tokenizer: Tokenizer) {
    this.info = info;
    this.generator = generator;
    this.tokenizer = tokenizer;
  }

  static async load(options: CandleEngineOptions): Promise<CandleEngine> {
    const started = performance.now();
    // Reads only the config header; throws MODEL_NOT_FOUND with the path for a bad --dir.
    const config = native().modelInfo(options.model);
    const generator = await native().Generator.load(options.model, options.adapter === undefined ? {} : { adapter: options.adapter });
    // The same tokenizer the Generator builds for itself, so countTokens matches promptTokens.
    const tokenizer = config.format === 'gguf' ? native().Tokenizer.fromGguf(options.model) : native().Tokenizer.fromFile(options.model);
    const info: EngineInfo = {
      id: options.id,
      engine: 'candle',
      contextLength: config.maxPositionEmbeddings,
      created: Math.floor(Date.now() / 1000),
      loadSeconds: (performance.now() - started) / 1000,
      maxTopLogprobs: 0,
      samplers: new Set(['topK', 'repetitionPenalty']),
      // Each generation occupies a libuv worker (4 by default, shared with fs and dns) and uses
      // every core; two at once already fill the 2-core target machine.
      maxConcurrency: 2,
      chatTemplate: tokenizer.chatTemplate !== null,
      streaming: false,
      cancellable: false,
    };
    return new CandleEngine(info, generator, tokenizer);
  }

  countTokens(prompt: EnginePrompt): number {
    // Mirrors the Generator's prompt building: a template renders every special token itself;
    // raw text gets the tokenizer's post-processor tokens (BOS).
    if (prompt.kind === 'messages') {
      const text = this.tokenizer.applyChatTemplate(prompt.messages, { addGenerationPrompt: true });
      return this.tokenizer.encode(text, { addSpecialTokens: false }).length;
    }
    return this.tokenizer.encode(prompt.text, { addSpecialTokens: true }).length;
  }

  async *generate(request: GenerateRequest, signal: AbortSignal): AsyncIterable<EngineEvent> {
    if (signal.aborted) throw abortError(signal);
    const { prompt, params } = request;
    const generation = await this.generator.generate(prompt.kind === 'messages' ? prompt.messages : prompt.text, {
      maxTokens: params.maxTokens,
      temperature: params.temperature,
      topP: params.topP,
      ...(params.topK > 0 ? { topK: params.topK } : {}),
      repetitionPenalty: params.repetitionPenalty,
      seed: params.seed,
      stop: params.stop,
      chatTemplate: prompt.kind === 'messages',
    });
    // Nothing of an aborted request reaches the client, even though it was computed.
    if (signal.aborted) throw abortError(signal);
    const tokens: GeneratedToken[] = generation.tokens.map((tokenId, i) => ({
      tokenId,
      text: this.tokenizer.decode([tokenId]),
      logprob: Math.log(generation.tokenProbs[i] ?? Number.NaN),
    }));
    if (generation.text !== '' || tokens.length > 0) yield { type: 'delta', text: generation.text, tokens };
    const meanLogprob = tokens.reduce((sum, t) => sum + t.logprob, 0) / Math.max(tokens.length, 1);
    yield {
      type: 'done',
      finishReason: generation.finishReason === 'length' ? 'length' : 'stop',
      usage: { promptTokens: generation.promptTokens, completionTokens: generation.completionTokens },
      confidence: tokens.length > 0 ? Math.exp(meanLogprob) : 0,
    };
  }

  async close(): Promise<void> {
    // The native Generator is freed by the garbage collector once unreferenced; nothing to flush.
  }
}
