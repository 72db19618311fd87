// The real default model (SmolLM2-135M-Instruct GGUF, pulled through `foremforge pull` or
// $TINYFORGE_SMOLLM2_GGUF) served over HTTP: the openai client asks a factual question and gets
// the right answer, plain and streamed; /predict gives the same text.
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { smollm2GgufPath } from '../helpers/models.js';
import { type TestServer, post, startTestServer } from './helpers.js';

let srv: TestServer;
let client: OpenAI;

beforeAll(async () => {
  srv = await startTestServer(await smollm2GgufPath());
  client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 120_000 });
});

afterAll(async () => {
  await srv?.close();
});

describe('SmolLM2-135M-Instruct over HTTP', () => {
  it('answers a factual question through the openai client, plain and streamed, and /predict', async () => {
    const id = srv.engine.info.id;
    const messages = [{ role: 'user' as const, content: 'What is the capital of France?' }];
    const plain = await client.chat.completions.create({ model: id, messages, max_tokens: 24, temperature: 0 });
    const answer = plain.choices[0]?.message.content ?? '';
    console.log(`SmolLM2 answered: ${JSON.stringify(answer)} (${JSON.stringify(plain.usage)})`);
    expect(answer).toMatch(/Paris/);
    expect(plain.choices[0]?.finish_reason).toBe('stop');

    const stream = await client.chat.completions.create({ model: id, messages, max_tokens: 24, temperature: 0, stream: true });
    let streamed = '';
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? '';
    expect(streamed).toBe(answer);

    const res = await post(srv.url, '/predict', { text: 'What is the capital of France?', max_tokens: 24 });
    const body = (await res.json()) as { output: string; confidence: number };
    expect(body.output).toBe(answer);
    expect(body.confidence).toBeGreaterThan(0.1);
  });

  it('foremforge chat keeps the conversation: a follow-up question is understood in context', async () => {
    const input = 'What is the capital of France?\nAnd of Germany?\n/exit\n';
    const r = await runCli(['chat', '--dir', await smollm2GgufPath(), '--max-tokens', '24', '--temperature', '0'], {
      input,
      timeoutMs: 300_000,
    });
    console.log(`foremforge chat printed: ${JSON.stringify(r.stdout)}`);
    expect(r.code).toBe(0);
    const [first, second] = r.stdout.trim().split('\n');
    expect(first).toMatch(/Paris/);
    expect(second).toMatch(/Berlin/);
  });
});
