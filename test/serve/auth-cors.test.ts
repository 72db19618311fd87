// API key (every route but /health needs `Authorization: Bearer`), CORS off unless asked, and
// /ready + /metrics content.
import OpenAI, { AuthenticationError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceServer } from '../../ts/serve/server.js';
import { createLogger } from '../../ts/serve/log.js';
import { type TestServer, apiError, post, startTestServer, tinyModel } from './helpers.js';

const KEY = 'tf-test-key-0123456789';
let model: { path: string; cleanup: () => void };
let secured: TestServer;
let open: TestServer;

beforeAll(async () => {
  model = await tinyModel();
  secured = await startTestServer(model.path, { apiKey: KEY });
  open = await startTestServer(model.path, { corsOrigin: 'https://app.example' });
});

afterAll(async () => {
  await secured?.close();
  await open?.close();
  model?.cleanup();
});

describe('API key', () => {
  it('guards every route except /health', async () => {
    expect((await fetch(`${secured.url}/health`)).status).toBe(200);
    for (const [method, route] of [
      ['GET', '/ready'],
      ['GET', '/metrics'],
      ['GET', '/v1/models'],
      ['POST', '/predict'],
      ['POST', '/v1/chat/completions'],
      ['POST', '/v1/completions'],
    ] as const) {
      const res = await fetch(`${secured.url}${route}`, { method, ...(method === 'POST' ? { body: '{}' } : {}) });
      expect(res.status, route).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(await apiError(res)).toMatchObject({ code: 'invalid_api_key' });
    }
    for (const auth of [`Bearer ${KEY}x`, `Bearer ${KEY.slice(0, -1)}`, KEY, `Basic ${KEY}`, 'Bearer']) {
      const res = await fetch(`${secured.url}/v1/models`, { headers: { Authorization: auth } });
      expect(res.status, auth).toBe(401);
    }
    const ok = await post(secured.url, '/predict', { text: 'hi', max_tokens: 2 }, { headers: { Authorization: `Bearer ${KEY}` } });
    expect(ok.status).toBe(200);
  });

  it('works with the openai client, which raises AuthenticationError on a wrong key', async () => {
    const good = new OpenAI({ baseURL: `${secured.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const chat = await good.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 });
    expect(chat.choices[0]?.message.role).toBe('assistant');
    const bad = new OpenAI({ baseURL: `${secured.url}/v1`, apiKey: 'wrong', maxRetries: 0 });
    await expect(bad.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }] })).rejects.toBeInstanceOf(
      AuthenticationError
    );
  });
});

describe('CORS', () => {
  it('is off by default: no Allow-Origin header, preflight refused', async () => {
    const res = await fetch(`${secured.url}/health`, { headers: { Origin: 'https://evil.example' } });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const pre = await fetch(`${secured.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' },
    });
    expect(pre.status).toBe(405);
  });

  it('when enabled, answers preflight and marks responses (errors included)', async () => {
    const pre = await fetch(`${open.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'POST' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(pre.headers.get('access-control-allow-headers')).toContain('Authorization');
    const err = await post(open.url, '/v1/completions', '{bad');
    expect(err.status).toBe(400);
    expect(err.headers.get('access-control-allow-origin')).toBe('https://app.example');
  });
});

describe('/ready and /metrics', () => {
  it('/ready is 503 until an engine is set, then 200', async () => {
    const server = new InferenceServer({ port: 0, logger: createLogger('silent') });
    const port = await server.listen();
    try {
      const url = `http://127.0.0.1:${port}`;
      expect((await fetch(`${url}/health`)).status).toBe(200);
      const notReady = await fetch(`${url}/ready`);
      expect(notReady.status).toBe(503);
      expect(await apiError(notReady)).toMatchObject({ type: 'unavailable_error', code: 'model_loading' });
      expect((await post(url, '/predict', { text: 'x' })).status).toBe(503);
      server.setEngine(open.engine);
      expect((await fetch(`${url}/ready`)).status).toBe(200);
    } finally {
      await server.shutdown();
    }
  });

  it('/metrics is Prometheus text with the request, token and queue series', async () => {
    await post(open.url, '/predict', { text: 'count me', max_tokens: 3 });
    const res = await fetch(`${open.url}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    for (const series of [
      'tinyforge_http_requests_total{route="/predict",method="post",status="200"}',
      'tinyforge_http_request_duration_seconds_bucket{le="0.001",route="/predict",status="200"}',
      'tinyforge_time_to_first_token_seconds_count{route="/predict"}',
      'tinyforge_prompt_tokens_total{route="/predict"}',
      'tinyforge_generated_tokens_total{route="/predict"} 3',
      'tinyforge_generation_tokens_per_second_count{route="/predict"}',
      'tinyforge_queue_depth 0',
      'tinyforge_active_batch_size 0',
      'tinyforge_model_load_seconds',
      'tinyforge_ready 1',
    ]) {
      expect(text, series).toContain(series);
    }
  });
});
