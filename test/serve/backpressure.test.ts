// Admission and cancellation on a real (slow-ish) tiny model with one slot and a one-deep queue:
// a full queue answers 503 + Retry-After while running requests finish; a queued request whose
// client leaves never reaches the engine; a running one stops being waited for at once and its
// tokens are never counted; the per-request timeout answers 504.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CandleEngine } from '../../ts/serve/engines/candle.js';
import { SLOW_MODEL, type TestServer, apiError, metric, post, startTestServer, tinyModel, waitFor } from './helpers.js';
import { GREEDY } from './engine-contract.js';

let model: { path: string; cleanup: () => void };
let srv: TestServer;

// Greedy raw continuation of 'hello' on this model does not hit EOS within 2,000 tokens
// (finish_reason 'length' is asserted below), so it keeps the slot for seconds.
const LONG = { prompt: 'hello', max_tokens: 2000, temperature: 0 };
const SHORT = { prompt: 'hi', max_tokens: 4, temperature: 0 };

beforeAll(async () => {
  model = await tinyModel(SLOW_MODEL, 'slow');
  srv = await startTestServer(model.path, { maxBatch: 1, maxQueue: 1 });
});

afterAll(async () => {
  await srv?.close();
  model?.cleanup();
});

const gauge = async (name: string) => (await metric(srv.url, name)) ?? 0;

describe('bounded queue', () => {
  it('answers 503 with Retry-After when the queue is full, and the admitted requests finish', async () => {
    const a = post(srv.url, '/v1/completions', LONG);
    await waitFor('A running', async () => (await gauge('tinyforge_active_batch_size')) === 1);
    const b = post(srv.url, '/v1/completions', SHORT);
    await waitFor('B queued', async () => (await gauge('tinyforge_queue_depth')) === 1);
    const c = await post(srv.url, '/v1/completions', SHORT);
    expect(c.status).toBe(503);
    const retryAfter = Number(c.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);
    const err = await apiError(c);
    expect(err).toMatchObject({ type: 'unavailable_error', code: 'queue_full' });
    expect(await gauge('tinyforge_requests_rejected_total{reason="queue_full"}')).toBe(1);

    const [ra, rb] = await Promise.all([a, b]);
    expect(ra.status).toBe(200);
    expect(((await ra.json()) as { choices: Array<{ finish_reason: string }> }).choices[0]?.finish_reason).toBe('length');
    expect(rb.status).toBe(200);
    await waitFor('idle', async () => (await gauge('tinyforge_active_batch_size')) === 0);
  });
});

describe('cancellation', () => {
  it('a queued request whose client disconnects leaves the queue and never reaches the engine', async () => {
    const promptBefore = await gauge('tinyforge_prompt_tokens_total{route="/v1/completions"}');
    const cancelledBefore = await gauge('tinyforge_generations_cancelled_total{reason="client"}');
    const a = post(srv.url, '/v1/completions', LONG);
    await waitFor('A running', async () => (await gauge('tinyforge_active_batch_size')) === 1);
    const controller = new AbortController();
    const b = post(srv.url, '/v1/completions', { prompt: 'queued and abandoned', max_tokens: 4 }, { signal: controller.signal });
    b.catch(() => undefined);
    await waitFor('B queued', async () => (await gauge('tinyforge_queue_depth')) === 1);
    controller.abort();
    await waitFor('B out of the queue', async () => (await gauge('tinyforge_queue_depth')) === 0, 2000);
    expect(await gauge('tinyforge_active_batch_size')).toBe(1);
    expect((await a).status).toBe(200);
    await waitFor('idle', async () => (await gauge('tinyforge_active_batch_size')) === 0);
    // Only A's prompt was ever fed to the engine.
    const aPrompt = srv.engine.countTokens({ kind: 'text', text: LONG.prompt });
    expect(await gauge('tinyforge_prompt_tokens_total{route="/v1/completions"}')).toBe(promptBefore + aPrompt);
    expect(await gauge('tinyforge_generations_cancelled_total{reason="client"}')).toBe(cancelledBefore + 1);
  });

  it('a streaming client that disconnects is released at once; its tokens are never counted', async () => {
    const generatedBefore = await gauge('tinyforge_generated_tokens_total{route="/v1/completions"}');
    const controller = new AbortController();
    const started = Date.now();
    const a = post(srv.url, '/v1/completions', { ...LONG, stream: true }, { signal: controller.signal });
    a.catch(() => undefined);
    await waitFor('A running', async () => (await gauge('tinyforge_active_batch_size')) === 1);
    controller.abort();
    // The request is logged as 499 (client closed) right away, not when the compute ends.
    await waitFor(
      'A logged as cancelled',
      () => srv.logs.some((l) => l.msg === 'request' && l.status === 499 && l.cancelled === 'client'),
      2000
    );
    // The interim candle engine cannot stop a native call: the slot frees when it ends (the ORT
    // engine frees it at the next step). Either way nothing of it reaches the counters.
    await waitFor('slot free', async () => (await gauge('tinyforge_active_batch_size')) === 0, 60_000);
    expect(await gauge('tinyforge_generated_tokens_total{route="/v1/completions"}')).toBe(generatedBefore);
    expect(Date.now() - started).toBeLessThan(60_000);
    const health = await fetch(`${srv.url}/health`);
    expect(health.status).toBe(200);
  });

  it('the engine honours an aborted signal: nothing is yielded', async () => {
    const engine = srv.engine as CandleEngine;
    const params = { ...GREEDY, maxTokens: 50 };
    const drain = async (signal: AbortSignal) => {
      const events = [];
      for await (const e of engine.generate({ prompt: { kind: 'text', text: 'x' }, params }, signal)) events.push(e);
      return events;
    };
    await expect(drain(AbortSignal.abort())).rejects.toThrow();
    const controller = new AbortController();
    const running = drain(controller.signal);
    controller.abort();
    await expect(running).rejects.toThrow();
    const done = await drain(new AbortController().signal);
    expect(done.at(-1)).toMatchObject({ type: 'done', usage: { completionTokens: 50 } });
  });
});

describe('timeout', () => {
  it('a generation longer than the request timeout gets 504 timeout_error', async () => {
    const quick = await startTestServer(model.path, { timeoutMs: 300 });
    try {
      const res = await post(quick.url, '/v1/completions', LONG);
      expect(res.status).toBe(504);
      expect(await apiError(res)).toMatchObject({ type: 'timeout_error', code: 'timeout' });
      expect(await metric(quick.url, 'tinyforge_generations_cancelled_total{reason="timeout"}')).toBe(1);
    } finally {
      await quick.close();
    }
  });
});
