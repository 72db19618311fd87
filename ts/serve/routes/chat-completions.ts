// POST /v1/chat/completions: OpenAI's chat API, plain or streamed (SSE), n = 1.
import { ApiError, badParam, toApiError } from '../api-error.js';
import { Fields, parseJsonObject } from '../fields.js';
import { collectGeneration } from '../generation.js';
import { checkModel, readMessages } from '../messages.js';
import { chatLogprobs, newId, usage } from '../openai-format.js';
import { SAMPLING_FIELDS, checkTopLogprobs, fitContext, readSampling } from '../sampling.js';
import { streamGeneration } from '../stream.js';
import type { RouteContext } from './context.js';

const FIELDS = [
  'model',
  'messages',
  'max_completion_tokens',
  'n',
  'stream',
  'logprobs',
  'top_logprobs',
  'tools',
  'tool_choice',
  'response_format',
  'logit_bias',
  ...SAMPLING_FIELDS,
];

const isEmptyObject = (v: unknown): boolean => typeof v === 'object' && v !== null && Object.keys(v).length === 0;

export async function chatCompletions(rc: RouteContext): Promise<void> {
  const { engine, reply, stats } = rc;
  const info = engine.info;
  const f = new Fields(parseJsonObject(await rc.body), FIELDS);
  checkModel(f, info);
  if (!f.has('messages')) throw badParam('messages', 'messages is required');
  const messages = readMessages(f.body.messages);
  f.onlyDefault('n', (v) => v === 1, 'only n = 1 is served (send several requests instead)');
  f.onlyDefault('tools', (v) => Array.isArray(v) && v.length === 0, 'tool calling is not implemented');
  f.onlyDefault('tool_choice', (v) => v === 'none', 'tool calling is not implemented');
  f.onlyDefault('response_format', (v) => (v as { type?: unknown }).type === 'text', 'structured output is not implemented');
  f.onlyDefault('logit_bias', isEmptyObject, 'logit_bias is not implemented');
  const stream = f.boolean('stream') ?? false;
  const includeUsage = f.includeUsage(stream);
  const logprobs = f.boolean('logprobs') ?? false;
  const topLogprobs = f.number('top_logprobs', { min: 0, max: 20, integer: true }) ?? 0;
  if (topLogprobs > 0 && !logprobs) throw badParam('top_logprobs', 'top_logprobs needs logprobs: true');

  let params = readSampling(f, info, { maxTokens: 256, temperature: 1 });
  params.maxTokens = f.number('max_completion_tokens', { min: 1, integer: true }) ?? params.maxTokens;
  params.topLogprobs = checkTopLogprobs('top_logprobs', topLogprobs, info);
  if (!info.chatTemplate) {
    throw new ApiError(400, 'this model has no chat template; use /v1/completions with a text prompt', {
      param: 'messages',
      code: 'chat_template_missing',
    });
  }
  const prompt = { kind: 'messages' as const, messages };
  let promptTokens: number;
  try {
    promptTokens = engine.countTokens(prompt);
  } catch (err) {
    throw toApiError(err);
  }
  params = fitContext(params, prompt, promptTokens, info, 'messages');
  stats.promptTokens = promptTokens;
  if (rc.logPrompts) stats.prompt = messages;

  const id = newId('chatcmpl');
  const created = Math.floor(Date.now() / 1000);
  const base = { id, object: 'chat.completion.chunk', created, model: info.id, system_fingerprint: info.engine };
  const request = { prompt, params };

  if (stream) {
    const chunk = (choice: object) => ({
      ...base,
      choices: [{ index: 0, logprobs: null, finish_reason: null, ...choice }],
      ...(includeUsage ? { usage: null } : {}),
    });
    await streamGeneration(rc.generation, reply, stats, request, {
      first: () => chunk({ delta: { role: 'assistant', content: '' } }),
      delta: (d) => chunk({ delta: { content: d.text }, logprobs: logprobs ? chatLogprobs(d.tokens) : null }),
      finish: (done) => chunk({ delta: {}, finish_reason: done.finishReason }),
      ...(includeUsage ? { usage: (done) => ({ ...base, choices: [], usage: usage(done) }) } : {}),
    });
    return;
  }
  const { text, tokens, done } = await collectGeneration(rc.generation, reply, stats, request);
  reply.json(200, {
    ...base,
    object: 'chat.completion',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: text, refusal: null },
        logprobs: logprobs ? chatLogprobs(tokens) : null,
        finish_reason: done.finishReason,
      },
    ],
    usage: usage(done),
  });
}
