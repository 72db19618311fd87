// Bad input never crashes the server and always gets OpenAI's error shape with the right status,
// `param` and `code`. After the whole matrix the same server still answers /health and a real
// generation.
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer, apiError, post, startTestServer, tinyModel } from './helpers.js';

let model: { path: string; cleanup: () => void };
let srv: TestServer;
const LIMIT = 64 * 1024;

beforeAll(async () => {
  model = await tinyModel();
  srv = await startTestServer(model.path, { bodyLimitBytes: LIMIT });
});

afterAll(async () => {
  await srv?.close();
  model?.cleanup();
});

const chat = (extra: Record<string, unknown>) => ({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, ...extra });

interface Case {
  name: string;
  route: string;
  body: unknown;
  status: number;
  param?: string | null;
  code?: string;
}

const CASES: Case[] = [
  { name: 'invalid JSON', route: '/v1/chat/completions', body: '{"model": "tiny", ', status: 400, code: 'invalid_json' },
  { name: 'JSON that is not an object', route: '/v1/completions', body: '[1,2]', status: 400, code: 'invalid_json' },
  { name: 'empty body', route: '/predict', body: '', status: 400, code: 'invalid_json' },
  { name: 'messages missing', route: '/v1/chat/completions', body: { model: 'tiny' }, status: 400, param: 'messages' },
  {
    name: 'messages not an array',
    route: '/v1/chat/completions',
    body: chat({ messages: 'hi' }),
    status: 400,
    param: 'messages',
    code: 'invalid_type',
  },
  { name: 'messages empty', route: '/v1/chat/completions', body: chat({ messages: [] }), status: 400, param: 'messages' },
  {
    name: 'unknown role',
    route: '/v1/chat/completions',
    body: chat({ messages: [{ role: 'wizard', content: 'x' }] }),
    status: 400,
    param: 'messages[0].role',
  },
  {
    name: 'image content part',
    route: '/v1/chat/completions',
    body: chat({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }),
    status: 400,
    param: 'messages[0].content[0]',
  },
  {
    name: 'tool call fields',
    route: '/v1/chat/completions',
    body: chat({ messages: [{ role: 'assistant', content: 'x', tool_calls: [] }] }),
    status: 400,
    param: 'messages[0].tool_calls',
  },
  {
    name: 'temperature as a string',
    route: '/v1/chat/completions',
    body: chat({ temperature: 'hot' }),
    status: 400,
    param: 'temperature',
    code: 'invalid_type',
  },
  { name: 'temperature out of range', route: '/v1/chat/completions', body: chat({ temperature: 3 }), status: 400, param: 'temperature' },
  { name: 'max_tokens 0', route: '/v1/completions', body: { prompt: 'x', max_tokens: 0 }, status: 400, param: 'max_tokens' },
  {
    name: 'max_tokens fractional',
    route: '/v1/completions',
    body: { prompt: 'x', max_tokens: 1.5 },
    status: 400,
    param: 'max_tokens',
    code: 'invalid_type',
  },
  { name: 'top_p 0', route: '/v1/completions', body: { prompt: 'x', top_p: 0 }, status: 400, param: 'top_p' },
  { name: 'negative seed', route: '/v1/completions', body: { prompt: 'x', seed: -1 }, status: 400, param: 'seed' },
  {
    name: 'stop not strings',
    route: '/v1/completions',
    body: { prompt: 'x', stop: [1] },
    status: 400,
    param: 'stop',
    code: 'invalid_type',
  },
  {
    name: 'stream not boolean',
    route: '/v1/chat/completions',
    body: chat({ stream: 'yes' }),
    status: 400,
    param: 'stream',
    code: 'invalid_type',
  },
  {
    name: 'stream_options without stream',
    route: '/v1/chat/completions',
    body: chat({ stream_options: { include_usage: true } }),
    status: 400,
    param: 'stream_options',
  },
  {
    name: 'unknown field',
    route: '/v1/chat/completions',
    body: chat({ temprature: 0.5 }),
    status: 400,
    param: 'temprature',
    code: 'unknown_parameter',
  },
  { name: 'n = 2', route: '/v1/chat/completions', body: chat({ n: 2 }), status: 400, param: 'n', code: 'unsupported_parameter' },
  {
    name: 'tools',
    route: '/v1/chat/completions',
    body: chat({ tools: [{ type: 'function', function: { name: 'f' } }] }),
    status: 400,
    param: 'tools',
    code: 'unsupported_parameter',
  },
  {
    name: 'json_schema response_format',
    route: '/v1/chat/completions',
    body: chat({ response_format: { type: 'json_object' } }),
    status: 400,
    param: 'response_format',
  },
  {
    name: 'sampler the engine lacks',
    route: '/v1/chat/completions',
    body: chat({ frequency_penalty: 0.5 }),
    status: 400,
    param: 'frequency_penalty',
    code: 'unsupported_parameter',
  },
  {
    name: 'top_logprobs without logprobs',
    route: '/v1/chat/completions',
    body: chat({ top_logprobs: 2 }),
    status: 400,
    param: 'top_logprobs',
  },
  { name: 'several prompts', route: '/v1/completions', body: { prompt: ['a', 'b'] }, status: 400, param: 'prompt' },
  { name: 'token-id prompt', route: '/v1/completions', body: { prompt: [1, 2, 3] }, status: 400, param: 'prompt', code: 'invalid_type' },
  { name: 'echo', route: '/v1/completions', body: { prompt: 'x', echo: true }, status: 400, param: 'echo' },
  { name: 'legacy logprobs above 5', route: '/v1/completions', body: { prompt: 'x', logprobs: 6 }, status: 400, param: 'logprobs' },
  { name: 'predict with neither text nor messages', route: '/predict', body: { max_tokens: 3 }, status: 400, param: 'text' },
  {
    name: 'predict with both',
    route: '/predict',
    body: { text: 'a', messages: [{ role: 'user', content: 'b' }] },
    status: 400,
    param: 'text',
  },
  { name: 'predict text not a string', route: '/predict', body: { text: 42 }, status: 400, param: 'text', code: 'invalid_type' },
  {
    name: 'unknown model',
    route: '/v1/chat/completions',
    body: chat({ model: 'gpt-4o' }),
    status: 404,
    param: 'model',
    code: 'model_not_found',
  },
  {
    name: 'unknown model on /predict',
    route: '/predict',
    body: { text: 'x', model: 'other' },
    status: 404,
    param: 'model',
    code: 'model_not_found',
  },
  { name: 'malformed model id in the path', route: '/v1/models/%E0%A4%A', body: undefined, status: 404, code: 'model_not_found' },
  { name: 'unknown route', route: '/v1/embeddings', body: { input: 'x' }, status: 404, code: 'not_found' },
];

describe('malformed input', () => {
  it.each(CASES)('$name -> $status', async (c) => {
    const res = c.body === undefined ? await fetch(`${srv.url}${c.route}`) : await post(srv.url, c.route, c.body);
    expect(res.status).toBe(c.status);
    expect(res.headers.get('content-type')).toBe('application/json');
    const err = await apiError(res);
    if (c.param !== undefined) expect(err.param).toBe(c.param);
    if (c.code !== undefined) expect(err.code).toBe(c.code);
    expect(err.type).toBe('invalid_request_error');
  });

  it('a body over the limit is 413, by Content-Length and by chunked upload', async () => {
    const big = JSON.stringify({ prompt: 'x'.repeat(LIMIT) });
    const res = await post(srv.url, '/v1/completions', big);
    expect(res.status).toBe(413);
    expect((await apiError(res)).code).toBe('body_too_large');
    // No Content-Length: the limit is enforced while reading.
    const chunks = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 8; i++) controller.enqueue(new TextEncoder().encode('x'.repeat(LIMIT / 4)));
        controller.close();
      },
    });
    const chunked = await fetch(`${srv.url}/v1/completions`, { method: 'POST', body: chunks, duplex: 'half' } as RequestInit);
    expect(chunked.status).toBe(413);
    expect((await apiError(chunked)).code).toBe('body_too_large');
  });

  it('a prompt longer than the context is 400 with both counts; max_tokens is capped to what is left', async () => {
    const ctx = srv.engine.info.contextLength;
    const long = 'lorem ipsum dolor sit amet '.repeat(1200);
    const tokens = srv.engine.countTokens({ kind: 'text', text: long });
    expect(tokens).toBeGreaterThan(ctx);
    const res = await post(srv.url, '/v1/completions', { prompt: long, max_tokens: 5 });
    expect(res.status).toBe(400);
    const err = await apiError(res);
    expect(err.code).toBe('context_length_exceeded');
    expect(err.param).toBe('prompt');
    expect(err.message).toContain(String(ctx));
    expect(err.message).toContain(String(tokens));

    // A prompt that leaves 3 tokens of room: asking for 500 yields at most 3, finish 'length'.
    const words = long.split(' ');
    let fit = '';
    for (let n = Math.floor(words.length / 2), step = n; step > 0; step = Math.floor(step / 2)) {
      const candidate = words.slice(0, n).join(' ');
      const count = srv.engine.countTokens({ kind: 'text', text: candidate });
      if (count <= ctx - 3) fit = candidate;
      n += count <= ctx - 3 ? step : -step;
    }
    const room = ctx - srv.engine.countTokens({ kind: 'text', text: fit });
    expect(room).toBeGreaterThanOrEqual(3);
    expect(room).toBeLessThan(40);
    const capped = await post(srv.url, '/v1/completions', { prompt: fit, max_tokens: 500, temperature: 0 });
    expect(capped.status).toBe(200);
    const body = (await capped.json()) as { usage: { completion_tokens: number; prompt_tokens: number } };
    expect(body.usage.prompt_tokens + body.usage.completion_tokens).toBeLessThanOrEqual(ctx);
  });

  it('a chat template that refuses the messages (raise_exception) is a 400 about messages', async () => {
    const strict = await tinyModel({}, 'strict');
    const configFile = path.join(strict.path, 'tokenizer_config.json');
    const config = JSON.parse(readFileSync(configFile, 'utf8')) as { chat_template: string };
    config.chat_template = `{% if messages[0]['role'] == 'assistant' %}{{ raise_exception('conversations must not start with the assistant') }}{% endif %}${config.chat_template}`;
    writeFileSync(configFile, JSON.stringify(config));
    const other = await startTestServer(strict.path);
    try {
      const res = await post(other.url, '/v1/chat/completions', { messages: [{ role: 'assistant', content: 'hello' }], max_tokens: 2 });
      expect(res.status).toBe(400);
      const err = await apiError(res);
      expect(err).toMatchObject({ param: 'messages', code: 'invalid_messages' });
      expect(err.message).toContain('must not start with the assistant');
      expect(
        (await post(other.url, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hello' }], max_tokens: 2 })).status
      ).toBe(200);
    } finally {
      await other.close();
      strict.cleanup();
    }
  });

  it('garbage on the socket does not take the server down; /health and generation still work', async () => {
    await new Promise<void>((resolve) => {
      const port = Number(new URL(srv.url).port);
      const sock = connect(port, '127.0.0.1', () => sock.end('NOT HTTP AT ALL\r\n\x00\x01\x02\r\n\r\n'));
      sock.on('error', () => resolve());
      sock.on('close', () => resolve());
      sock.resume();
    });
    const health = await fetch(`${srv.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok' });
    const res = await post(srv.url, '/predict', { text: 'still there?', max_tokens: 3 });
    expect(res.status).toBe(200);
    // Every failed request above was logged with its status, none with a prompt.
    const statuses = srv.logs.filter((l) => l.msg === 'request').map((l) => l.status);
    expect(statuses.filter((s) => s === 400).length).toBeGreaterThanOrEqual(CASES.filter((c) => c.status === 400).length);
    expect(srv.logs.some((l) => 'prompt' in l)).toBe(false);
  });
});
