// POST /v1/completions: OpenAI's legacy text completion, raw prompt (no chat template), n = 1.
import { badParam, toApiError } from '../api-error.js';
import type { GeneratedToken } from '../engine.js';
import { Fields, parseJsonObject } from '../fields.js';
import { collectGeneration } from '../generation.js';
import { checkModel } from '../messages.js';
import { completionLogprobs, newId, usage } from '../openai-format.js';
import { SAMPLING_FIELDS, checkTopLogprobs, fitContext, readSampling } from '../sampling.js';
import { streamGeneration } from '../stream.js';
import type { RouteContext } from './context.js';

const FIELDS = ['model', 'prompt', 'n', 'stream', 'logprobs', 'echo', 'suffix', 'best_of', 'logit_bias', ...SAMPLING_FIELDS];

function readPrompt(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.length === 1 && typeof value[0] === 'string') return value[0];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) {
    throw badParam('prompt', `prompt holds ${value.length} strings; send one prompt per request`, 'unsupported_parameter');
  }
  throw badParam('prompt', 'prompt must be a string (token-id prompts are not supported)', 'invalid_type');
}

export async function completions(rc: RouteContext): Promise<void> {
  const { engine, reply, stats } = rc;
  const info = engine.info;
  const f = new Fields(parseJsonObject(await rc.body), FIELDS);
  checkModel(f, info);
  if (!f.has('prompt')) throw badParam('prompt', 'prompt is required');
  const text = readPrompt(f.body.prompt);
  f.onlyDefault('n', (v) => v === 1, 'only n = 1 is served (send several requests instead)');
  f.onlyDefault('best_of', (v) => v === 1, 'only best_of = 1 is served');
  f.onlyDefault('echo', (v) => v === false, 'echo is not implemented');
  f.onlyDefault('suffix', (v) => v === '', 'suffix (fill-in-the-middle) is not implemented');
  f.onlyDefault('logit_bias', (v) => typeof v === 'object' && Object.keys(v as object).length === 0, 'logit_bias is not implemented');
  const stream = f.boolean('stream') ?? false;
  const includeUsage = f.includeUsage(stream);
  // Legacy semantics: logprobs = N returns the chosen token's logprob plus N alternatives.
  const logprobsN = f.number('logprobs', { min: 0, max: 5, integer: true });
  const withLogprobs = logprobsN !== undefined;

  let params = readSampling(f, info, { maxTokens: 256, temperature: 1 });
  params.topLogprobs = checkTopLogprobs('logprobs', logprobsN ?? 0, info);
  const prompt = { kind: 'text' as const, text };
  let promptTokens: number;
  try {
    promptTokens = engine.countTokens(prompt);
  } catch (err) {
    throw toApiError(err);
  }
  params = fitContext(params, prompt, promptTokens, info, 'prompt');
  stats.promptTokens = promptTokens;
  if (rc.logPrompts) stats.prompt = text;

  const base = {
    id: newId('cmpl'),
    object: 'text_completion',
    created: Math.floor(Date.now() / 1000),
    model: info.id,
    system_fingerprint: info.engine,
  };
  const request = { prompt, params };
  let offset = 0;
  const logprobsOf = (tokens: GeneratedToken[]) => {
    const lp = completionLogprobs(tokens, offset, (logprobsN ?? 0) > 0);
    offset += tokens.reduce((n, t) => n + t.text.length, 0);
    return lp;
  };

  if (stream) {
    const chunk = (choice: object) => ({
      ...base,
      choices: [{ index: 0, text: '', logprobs: null, finish_reason: null, ...choice }],
      ...(includeUsage ? { usage: null } : {}),
    });
    await streamGeneration(rc.generation, reply, stats, request, {
      delta: (d) => chunk({ text: d.text, logprobs: withLogprobs ? logprobsOf(d.tokens) : null }),
      finish: (done) => chunk({ finish_reason: done.finishReason }),
      ...(includeUsage ? { usage: (done) => ({ ...base, choices: [], usage: usage(done) }) } : {}),
    });
    return;
  }
  const { text: output, tokens, done } = await collectGeneration(rc.generation, reply, stats, request);
  reply.json(200, {
    ...base,
    choices: [{ index: 0, text: output, logprobs: withLogprobs ? logprobsOf(tokens) : null, finish_reason: done.finishReason }],
    usage: usage(done),
  });
}
