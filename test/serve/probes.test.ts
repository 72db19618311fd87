// The probe routes' bookkeeping after the /health fast path: every request is still in the HTTP
// metrics (counter and latency histogram, same text as prom-client's), successful probes log at
// debug level only, failed ones at info, and the process metrics are in the first scrape.
import { afterEach, describe, expect, it } from 'vitest';
import { type LogLevel, createLogger } from '../../ts/serve/log.js';
import { InferenceServer } from '../../ts/serve/server.js';
import { metric } from './helpers.js';

let server: InferenceServer | undefined;

async function start(level: LogLevel, corsOrigin?: string) {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger(level, (text) => {
    for (const line of text.split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  server = new InferenceServer({ port: 0, logger, ...(corsOrigin === undefined ? {} : { corsOrigin }) });
  const port = await server.listen();
  return {
    url: `http://127.0.0.1:${port}`,
    requestLines: () => {
      logger.flush();
      return lines.filter((l) => l.msg === 'request');
    },
  };
}

afterEach(async () => {
  await server?.shutdown();
  server = undefined;
});

describe('probe routes', () => {
  it('count /health in the request metrics and log it only at debug level', async () => {
    const { url, requestLines } = await start('info');
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${url}/health`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ok', transport: 'native' });
    }
    expect(await metric(url, 'tinyforge_http_requests_total{route="/health",method="get",status="200"}')).toBe(5);
    expect(await metric(url, 'tinyforge_http_request_duration_seconds_count{route="/health",status="200"}')).toBe(5);
    expect(await metric(url, 'tinyforge_http_request_duration_seconds_bucket{le="+Inf",route="/health",status="200"}')).toBe(5);
    // Sub-millisecond answers: all in the first bucket, and buckets are cumulative.
    expect(await metric(url, 'tinyforge_http_request_duration_seconds_bucket{le="0.001",route="/health",status="200"}')).toBe(5);
    expect(await metric(url, 'tinyforge_http_request_duration_seconds_bucket{le="120",route="/health",status="200"}')).toBe(5);
    expect((await metric(url, 'tinyforge_http_request_duration_seconds_sum{route="/health",status="200"}')) ?? -1).toBeGreaterThan(0);
    // The /metrics scrapes are counted too: the 6 above, not yet the one reading this.
    expect(await metric(url, 'tinyforge_http_requests_total{route="/metrics",method="get",status="200"}')).toBe(6);
    // The process metrics load after listening; the first scrape already has them.
    expect(await metric(url, 'tinyforge_process_resident_memory_bytes')).toBeGreaterThan(0);
    // /ready answers 503 without an engine: a failed probe is logged at info; the others are not.
    expect((await fetch(`${url}/ready`)).status).toBe(503);
    const lines = requestLines();
    expect(lines.map((l) => [l.route, l.status])).toEqual([['/ready', 503]]);
  });

  it('at debug level log every /health with its id; a client X-Request-Id is echoed, CORS headers kept', async () => {
    const { url, requestLines } = await start('debug', 'https://app.example');
    const res = await fetch(`${url}/health`, { headers: { 'X-Request-Id': 'probe-1' } });
    expect(res.headers.get('x-request-id')).toBe('probe-1');
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(res.headers.get('content-type')).toBe('application/json');
    const plain = await fetch(`${url}/health`);
    expect(plain.headers.get('x-request-id')).toBeNull();
    await fetch(`${url}/metrics`);
    const lines = requestLines();
    expect(lines.filter((l) => l.route === '/health').map((l) => [l.level, l.id, l.status])).toEqual([
      ['debug', 'probe-1', 200],
      ['debug', undefined, 200],
    ]);
    expect(lines.filter((l) => l.route === '/metrics').map((l) => l.level)).toEqual(['debug']);
  });
});

describe('request log lines', () => {
  it('are one JSON object each: time, level, msg, then the fields; below the level nothing is built', () => {
    let text = '';
    const logger = createLogger('info', (t) => {
      text += t;
    });
    logger.info('plain');
    logger.warn('with fields', { a: 1, s: 'x"y\n', nested: { ok: true }, gone: undefined });
    logger.debug('hidden', { a: 2 });
    logger.flush();
    const lines = text
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toEqual({ time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/), level: 'info', msg: 'plain' });
    expect(lines[1]).toMatchObject({ level: 'warn', msg: 'with fields', a: 1, s: 'x"y\n', nested: { ok: true } });
    expect(Object.keys(lines[1] ?? {})).toEqual(['time', 'level', 'msg', 'a', 's', 'nested']);
    expect(logger.enabled?.('debug')).toBe(false);
    expect(logger.enabled?.('error')).toBe(true);
  });
});
