// The serving engine for export folders: the native ONNX Runtime `InferenceSession`
// (crates/infer/src/engine.rs). One scheduler thread batches every running request (continuous
// batching: requests join and leave between decode steps, long prompts are prefilled in chunks
// between steps), streams one delta per token, and stops a request at the next step when its
// signal aborts. Every sampler of the core loop is available, and up to 20 top logprobs.
import type { InferEvent, InferOptions, InferenceSession } from '@tinyforge/native';
import { ForgeError } from '../../errors.js';
import { native } from '../../native.js';
import type { Engine, EngineEvent, EngineInfo, EnginePrompt, GenerateRequest, GeneratedToken } from '../engine.js';

export interface OrtEngineOptions {
  /** A `foremforge export` folder. */
  dir: string;
  /** Name shown to clients. */
  id: string;
  /** ORT intra-op threads (default: one per core). */
  threads?: number;
  /** Requests decoded together (default 8). */
  maxBatch?: number;
  /** ORT's idle pool threads spin between ops (default: the engine's, see its README). */
  spinning?: boolean;
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new ForgeError('ABORTED', 'generation aborted');
}

function promptArg(prompt: EnginePrompt): string | Array<{ role: string; content: string }> {
  return prompt.kind === 'messages' ? prompt.messages : prompt.text;
}

function token(e: InferEvent, topLogprobs: number): GeneratedToken[] {
  if (e.token === undefined || e.token === null) return [];
  const t: GeneratedToken = { tokenId: e.token, text: e.tokenText ?? '', logprob: e.logprob ?? Number.NaN };
  if (topLogprobs > 0) t.topLogprobs = (e.topLogprobs ?? []).map((a) => ({ tokenId: a.token, text: a.text, logprob: a.logprob }));
  return [t];
}

export class OrtEngine implements Engine {
  readonly info: EngineInfo;
  private readonly session: InferenceSession;

  private constructor(info: EngineInfo, session: InferenceSession) {
    this.info = info;
    this.session = session;
  }

  static async load(options: OrtEngineOptions): Promise<OrtEngine> {
    const started = performance.now();
    const session = await native().InferenceSession.load(options.dir, {
      ...(options.threads === undefined ? {} : { threads: options.threads }),
      ...(options.maxBatch === undefined ? {} : { slots: options.maxBatch }),
      ...(options.spinning === undefined ? {} : { spinning: options.spinning }),
    });
    const s = session.info;
    const info: EngineInfo = {
      id: options.id,
      engine: 'ort',
      contextLength: s.contextLen,
      created: Math.floor(Date.now() / 1000),
      loadSeconds: (performance.now() - started) / 1000,
      maxTopLogprobs: 20,
      samplers: new Set(['topK', 'minP', 'repetitionPenalty', 'frequencyPenalty', 'presencePenalty']),
      maxConcurrency: s.slots,
      chatTemplate: s.chatTemplate,
      streaming: true,
      cancellable: true,
    };
    return new OrtEngine(info, session);
  }

  countTokens(prompt: EnginePrompt): number {
    return this.session.countTokens(promptArg(prompt), prompt.kind === 'messages');
  }

  async *generate(request: GenerateRequest, signal: AbortSignal): AsyncIterable<EngineEvent> {
    if (signal.aborted) throw abortError(signal);
    const { prompt, params } = request;
    const options: InferOptions = {
      maxTokens: params.maxTokens,
      temperature: params.temperature,
      topP: params.topP,
      ...(params.topK > 0 ? { topK: params.topK } : {}),
      ...(params.minP > 0 ? { minP: params.minP } : {}),
      repetitionPenalty: params.repetitionPenalty,
      frequencyPenalty: params.frequencyPenalty,
      presencePenalty: params.presencePenalty,
      // The native seed is a u32; larger seeds keep their low bits (still deterministic).
      seed: params.seed >>> 0,
      stop: params.stop,
      topLogprobs: params.topLogprobs,
      chatTemplate: prompt.kind === 'messages',
    };
    // Breaking out of this loop (abort, client gone) runs the stream's `finally`, which cancels.
    const stream = this.session.stream(promptArg(prompt), options, { signal });
    let sum = 0;
    let count = 0;
    for (;;) {
      const next = await stream.next();
      if (signal.aborted) {
        await stream.return(undefined as never);
        throw abortError(signal);
      }
      if (next.done) {
        const r = next.value;
        if (r.finishReason === 'cancelled') throw abortError(signal);
        yield {
          type: 'done',
          finishReason: r.finishReason === 'length' ? 'length' : 'stop',
          usage: { promptTokens: r.usage.promptTokens, completionTokens: r.usage.completionTokens },
          confidence: count > 0 ? Math.exp(sum / count) : 0,
        };
        return;
      }
      const tokens = token(next.value, params.topLogprobs);
      for (const t of tokens) {
        sum += t.logprob;
        count++;
      }
      const text = next.value.text ?? '';
      if (text !== '' || tokens.length > 0) yield { type: 'delta', text, tokens };
    }
  }

  async close(): Promise<void> {
    // Cancels what still runs at its next step and joins the scheduler thread.
    this.session.close();
  }
}
