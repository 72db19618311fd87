// The sampling fields every generation route shares, checked against what the engine can do,
// and the context-window arithmetic: a prompt that leaves no room is a 400 with the counts,
// and max_tokens is capped to what is left (llama-server does the same; OpenAI would refuse).
import { ApiError, badParam } from './api-error.js';
import type { EngineInfo, EnginePrompt, SamplingParams } from './engine.js';
import type { Fields } from './fields.js';

export const SAMPLING_FIELDS = [
  'max_tokens',
  'temperature',
  'top_p',
  'top_k',
  'min_p',
  'repetition_penalty',
  'frequency_penalty',
  'presence_penalty',
  'seed',
  'stop',
] as const;

export interface SamplingDefaults {
  maxTokens: number;
  temperature: number;
}

const UNSUPPORTED: Array<
  [field: string, sampler: 'topK' | 'minP' | 'repetitionPenalty' | 'frequencyPenalty' | 'presencePenalty', off: number]
> = [
  ['top_k', 'topK', 0],
  ['min_p', 'minP', 0],
  ['repetition_penalty', 'repetitionPenalty', 1],
  ['frequency_penalty', 'frequencyPenalty', 0],
  ['presence_penalty', 'presencePenalty', 0],
];

/** Reads the shared fields; `maxTokens` is not yet capped (see `fitContext`). */
export function readSampling(f: Fields, info: EngineInfo, defaults: SamplingDefaults, maxTokensField = 'max_tokens'): SamplingParams {
  const params: SamplingParams = {
    maxTokens: f.number(maxTokensField, { min: 1, integer: true }) ?? defaults.maxTokens,
    temperature: f.number('temperature', { min: 0, max: 2 }) ?? defaults.temperature,
    topP: f.number('top_p', { min: 0, max: 1, exclusiveMin: true }) ?? 1,
    topK: f.number('top_k', { min: 0, integer: true }) ?? 0,
    minP: f.number('min_p', { min: 0, max: 1 }) ?? 0,
    repetitionPenalty: f.number('repetition_penalty', { min: 0, exclusiveMin: true, max: 10 }) ?? 1,
    frequencyPenalty: f.number('frequency_penalty', { min: -2, max: 2 }) ?? 0,
    presencePenalty: f.number('presence_penalty', { min: -2, max: 2 }) ?? 0,
    // The native samplers take a u32 seed.
    seed: f.number('seed', { min: 0, max: 0xffff_ffff, integer: true }) ?? 0,
    stop: f.stop(),
    topLogprobs: 0,
  };
  for (const [field, sampler, off] of UNSUPPORTED) {
    const value = f.number(field);
    if (value !== undefined && value !== off && !info.samplers.has(sampler)) {
      throw badParam(field, `${field} is not supported by the ${info.engine} engine serving this model`, 'unsupported_parameter');
    }
  }
  return params;
}

/** Checks top_logprobs against the engine's limit. */
export function checkTopLogprobs(param: string, n: number, info: EngineInfo): number {
  if (n > info.maxTopLogprobs) {
    throw badParam(
      param,
      `${param} = ${n} is more than the ${info.engine} engine reports (at most ${info.maxTopLogprobs})`,
      'unsupported_parameter'
    );
  }
  return n;
}

/**
 * Counts the prompt and caps maxTokens to the room left in the context window. Throws 400
 * `context_length_exceeded` when the prompt alone fills it.
 */
export function fitContext(
  params: SamplingParams,
  prompt: EnginePrompt,
  promptTokens: number,
  info: EngineInfo,
  param: string
): SamplingParams {
  const room = info.contextLength - promptTokens;
  if (room < 1) {
    throw new ApiError(
      400,
      `This model's maximum context length is ${info.contextLength} tokens; your ${prompt.kind === 'messages' ? 'messages' : 'prompt'} ` +
        `take ${promptTokens} tokens, leaving no room for a completion. Shorten the ${param}.`,
      { param, code: 'context_length_exceeded' }
    );
  }
  return { ...params, maxTokens: Math.min(params.maxTokens, room) };
}
