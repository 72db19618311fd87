// 64 concurrent requests through the bounded queue: all answered, each greedy answer equal to the
// same request run alone, and the queue/batch gauges back at 0 afterwards. Plus --log-prompts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer, metric, post, startTestServer, tinyModel } from './helpers.js';

let model: { path: string; cleanup: () => void };
let srv: TestServer;

beforeAll(async () => {
  model = await tinyModel();
  srv = await startTestServer(model.path, { maxBatch: 8, maxQueue: 64, logPrompts: true });
});

afterAll(async () => {
  await srv?.close();
  model?.cleanup();
});

const PROMPTS = Array.from({ length: 64 }, (_, i) => `Question ${i}: what comes after ${i * 7}?`);

async function ask(text: string, i: number): Promise<string> {
  // A random model's greedy answers mostly collapse to one text, so odd requests sample with their
  // own seed (as deterministic as greedy): a mix-up between requests then shows.
  const res = await post(srv.url, '/v1/completions', { prompt: text, max_tokens: 12, temperature: i % 2, seed: i });
  expect(res.status).toBe(200);
  return ((await res.json()) as { choices: Array<{ text: string }> }).choices[0]?.text ?? '';
}

describe('64 concurrent requests', () => {
  it('are all answered, each exactly as when run alone', async () => {
    const alone: string[] = [];
    for (const [i, p] of PROMPTS.entries()) alone.push(await ask(p, i));
    // Different prompts give different answers, so a mix-up between requests would show.
    expect(new Set(alone).size).toBeGreaterThan(16);
    const together = await Promise.all(PROMPTS.map((p, i) => ask(p, i)));
    expect(together).toEqual(alone);
    expect(await metric(srv.url, 'tinyforge_queue_depth')).toBe(0);
    expect(await metric(srv.url, 'tinyforge_active_batch_size')).toBe(0);
    expect(await metric(srv.url, 'tinyforge_http_requests_total{route="/v1/completions",method="post",status="200"}')).toBe(128);
  });

  it('--log-prompts puts the prompt in the request log line', () => {
    const line = srv.logs.find((l) => l.msg === 'request' && JSON.stringify(l.prompt ?? '').includes('Question 5:'));
    expect(line).toMatchObject({ route: '/v1/completions', status: 200, completionTokens: expect.any(Number) });
  });
});
