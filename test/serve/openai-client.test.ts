// The real `openai` npm client against our server over loopback, on a tiny random model served by
// the candle engine: chat and completions, plain and streamed, logprobs, usage, and errors raised
// as the client's own typed exceptions. Greedy answers are compared with the native Generator
// called directly, so the server can neither invent nor mangle text.
import { Generator } from '@tinyforge/native';
import OpenAI, { BadRequestError, NotFoundError } from 'openai';
import type { ChatCompletion, ChatCompletionChunk, Completion } from 'openai/resources';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer, post, startTestServer, tinyModel } from './helpers.js';

let model: { path: string; cleanup: () => void };
let srv: TestServer;
let client: OpenAI;
let generator: Generator;

beforeAll(async () => {
  model = await tinyModel();
  srv = await startTestServer(model.path);
  client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
  generator = await Generator.load(model.path);
});

afterAll(async () => {
  await srv?.close();
  model?.cleanup();
});

const messages = [
  { role: 'system' as const, content: 'You answer briefly.' },
  { role: 'user' as const, content: 'What is the capital of France?' },
];

describe('openai client: chat completions', () => {
  it('answers like the native Generator, with usage and logprobs', async () => {
    const chat: ChatCompletion = await client.chat.completions.create({
      model: 'tiny',
      messages,
      max_tokens: 12,
      temperature: 0,
      logprobs: true,
    });
    const direct = await generator.generate(messages, { maxTokens: 12, temperature: 0 });
    expect(chat.object).toBe('chat.completion');
    expect(chat.model).toBe('tiny');
    expect(chat.choices).toHaveLength(1);
    const choice = chat.choices[0] as ChatCompletion.Choice;
    expect(choice.message.role).toBe('assistant');
    expect(choice.message.content).toBe(direct.text);
    expect(choice.finish_reason).toBe(direct.finishReason === 'length' ? 'length' : 'stop');
    expect(chat.usage).toEqual({
      prompt_tokens: direct.promptTokens,
      completion_tokens: direct.completionTokens,
      total_tokens: direct.promptTokens + direct.completionTokens,
    });
    // The server's own prompt count (used for the context check) agrees with the engine's.
    expect(srv.engine.countTokens({ kind: 'messages', messages })).toBe(direct.promptTokens);
    const lp = choice.logprobs?.content ?? [];
    expect(lp).toHaveLength(direct.tokens.length);
    for (const [i, t] of lp.entries()) expect(t.logprob).toBeCloseTo(Math.log(direct.tokenProbs[i] ?? 0), 6);
  });

  it('streams chunks that add up to the plain answer, ending with usage', async () => {
    const plain = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 10, temperature: 0 });
    const stream = await client.chat.completions.create({
      model: 'tiny',
      messages,
      max_tokens: 10,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant');
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text).toBe(plain.choices[0]?.message.content);
    const finish = chunks.find((c) => c.choices[0]?.finish_reason);
    expect(finish?.choices[0]?.finish_reason).toBe(plain.choices[0]?.finish_reason);
    const last = chunks.at(-1) as ChatCompletionChunk;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual(plain.usage);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
  });

  it('the same seed samples the same text; stop strings cut the answer', async () => {
    const ask = (seed: number) => client.chat.completions.create({ model: 'tiny', messages, max_tokens: 16, temperature: 0.9, seed });
    const [a, b] = await Promise.all([ask(7), ask(7)]);
    expect(b.choices[0]?.message.content).toBe(a.choices[0]?.message.content);
    const full =
      (await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 16, temperature: 0 })).choices[0]?.message.content ?? '';
    const stop = full.slice(3, 5);
    expect(stop.length).toBe(2);
    const cut = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 16, temperature: 0, stop: [stop] });
    expect(cut.choices[0]?.message.content).toBe(full.slice(0, full.indexOf(stop)));
    expect(cut.choices[0]?.finish_reason).toBe('stop');
  });

  it('errors arrive as the client typed exceptions with the OpenAI error body', async () => {
    const unknown = client.chat.completions.create({ model: 'gpt-4o', messages });
    await expect(unknown).rejects.toBeInstanceOf(NotFoundError);
    await expect(unknown).rejects.toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });
    const twoChoices = client.chat.completions.create({ model: 'tiny', messages, n: 2 });
    await expect(twoChoices).rejects.toBeInstanceOf(BadRequestError);
    await expect(twoChoices).rejects.toMatchObject({ status: 400, param: 'n', code: 'unsupported_parameter' });
    // The candle engine only knows the chosen token's probability: asking for alternatives is a
    // clear 400, not an empty list.
    await expect(client.chat.completions.create({ model: 'tiny', messages, logprobs: true, top_logprobs: 2 })).rejects.toMatchObject({
      status: 400,
      param: 'top_logprobs',
    });
  });

  it('lists the served model', async () => {
    const models = [];
    for await (const m of client.models.list()) models.push(m);
    expect(models.map((m) => m.id)).toEqual(['tiny']);
    expect((await client.models.retrieve('tiny')).id).toBe('tiny');
    await expect(client.models.retrieve('other')).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('openai client: completions', () => {
  it('continues raw text (no chat template) like the Generator, plain and streamed', async () => {
    const prompt = 'The quick brown fox';
    const direct = await generator.generate(prompt, { maxTokens: 10, temperature: 0, chatTemplate: false });
    const plain: Completion = await client.completions.create({ model: 'tiny', prompt, max_tokens: 10, temperature: 0, logprobs: 0 });
    expect(plain.object).toBe('text_completion');
    expect(plain.choices[0]?.text).toBe(direct.text);
    expect(plain.usage?.prompt_tokens).toBe(direct.promptTokens);
    expect(srv.engine.countTokens({ kind: 'text', text: prompt })).toBe(direct.promptTokens);
    expect(plain.choices[0]?.logprobs?.token_logprobs).toHaveLength(direct.tokens.length);

    const stream = await client.completions.create({
      model: 'tiny',
      prompt,
      max_tokens: 10,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: Completion['usage'];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      usage = chunk.usage ?? usage;
    }
    expect(text).toBe(direct.text);
    expect(usage).toEqual(plain.usage);
  });

  it('POST /predict keeps the seed contract: {"text"} -> {"output","confidence"}', async () => {
    const res = await post(srv.url, '/predict', { text: 'What is the capital of France?', max_tokens: 8 });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { output: string; confidence: number; usage: { completion_tokens: number }; latency_ms: number };
    const direct = await generator.generate('What is the capital of France?', { maxTokens: 8, temperature: 0 });
    expect(body.output).toBe(direct.text);
    expect(body.usage.completion_tokens).toBe(direct.completionTokens);
    // exp(mean log p) of the generated tokens.
    const geo = Math.exp(direct.tokenProbs.reduce((s, p) => s + Math.log(p), 0) / direct.tokenProbs.length);
    expect(body.confidence).toBeCloseTo(geo, 9);
    expect(body.latency_ms).toBeGreaterThanOrEqual(0);
  });
});
