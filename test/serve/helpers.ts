// Shared by the service tests: a tiny random model (real weights through the real candle
// engine, never a stub), an in-process server on a free loopback port, and /metrics reading.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type TinyModelOptions, createTinyModel } from '@tinyforge/native';
import { CandleEngine } from '../../ts/serve/engines/candle.js';
import { createLogger } from '../../ts/serve/log.js';
import { InferenceServer, type ServerOptions } from '../../ts/serve/server.js';

/** Writes a tiny model into a fresh temp dir; `cleanup` removes it. */
export async function tinyModel(options: TinyModelOptions = {}, name = 'tiny'): Promise<{ path: string; cleanup: () => void }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tinyforge-serve-'));
  const model = path.join(dir, name);
  await createTinyModel(model, { seed: 3, ...options });
  return { path: model, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

// 4 layers x 256 wide: ~2.5 ms per token here, so 2,000 greedy tokens keep a slot busy for
// seconds (long enough to queue behind, disconnect from or SIGTERM during).
export const SLOW_MODEL: TinyModelOptions = { layers: 4, hidden: 256, heads: 4, kvHeads: 2 };

export interface TestServer {
  server: InferenceServer;
  engine: CandleEngine;
  url: string;
  logs: Array<Record<string, unknown>>;
  close: () => Promise<void>;
}

export async function startTestServer(modelPath: string, options: ServerOptions = {}): Promise<TestServer> {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger('info', (text) => {
    for (const line of text.split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  const server = new InferenceServer({ port: 0, logger, ...options });
  const port = await server.listen();
  const engine = await CandleEngine.load({ model: modelPath, id: path.basename(modelPath) });
  server.setEngine(engine);
  return {
    server,
    engine,
    url: `http://127.0.0.1:${port}`,
    get logs() {
      logger.flush();
      return lines;
    },
    close: () => server.shutdown(),
  };
}

/** The value of one sample in /metrics (labels matched exactly as written), or undefined. */
export async function metric(url: string, sample: string, headers: Record<string, string> = {}): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`, { headers })).text();
  for (const line of text.split('\n')) {
    if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
  }
  return undefined;
}

/** Polls `check` every 10 ms until it is true; fails after `timeoutMs`. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export async function post(url: string, route: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(`${url}${route}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(init.headers as Record<string, string> | undefined) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(init.signal ? { signal: init.signal } : {}),
  });
}

/** Asserts the OpenAI error shape and returns the error object. */
export async function apiError(res: Response): Promise<{ message: string; type: string; param: string | null; code: string | null }> {
  const body = (await res.json()) as { error?: Record<string, unknown> };
  const e = body.error;
  if (!e || typeof e.message !== 'string' || typeof e.type !== 'string' || !('param' in e) || !('code' in e)) {
    throw new Error(`not an OpenAI error body: ${JSON.stringify(body)}`);
  }
  return e as { message: string; type: string; param: string | null; code: string | null };
}
