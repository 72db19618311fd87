#!/usr/bin/env node
// `npm run bench -- serve`: the service over HTTP, side by side in one run (needs `npm run build`).
//   1. HTTP overhead: GET /health of `foremforge serve` vs a bare uWebSockets.js app answering the
//      same bytes, same pipelined keep-alive client (8 connections x 16 in flight), median of
//      BENCH_PASSES passes. Goal (issue 10): ours >= 0.8x raw.
//   2. Cold start: spawn to the first 200 from /ready.
//   3. Generation: /v1/completions, 64 greedy tokens, at 1, 8 and 32 concurrent clients: req/s,
//      p50/p99 latency, p99 time to first token (streamed), aggregate generated tokens/s, RSS.
// The model: BENCH_SERVE_MODEL, else the SmolLM2-135M-Instruct GGUF ($TINYFORGE_SMOLLM2_GGUF or the
// pull cache), else a tiny random model. Whatever engine `serve --dir` picks answers (today the
// interim candle engine). Servers run in child processes; the client is this process.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist/cli/index.js');
const PASSES = Number(process.env.BENCH_PASSES ?? 3);
const require = createRequire(import.meta.url);

async function pickModel() {
  if (process.env.BENCH_SERVE_MODEL) return process.env.BENCH_SERVE_MODEL;
  const cached = path.join(os.homedir(), '.cache/tinyforge/models/smollm2-135m-instruct/gguf/SmolLM2-135M-Instruct.Q4_1.gguf');
  for (const p of [process.env.TINYFORGE_SMOLLM2_GGUF, cached]) if (p && existsSync(p)) return p;
  const { createTinyModel } = require('@tinyforge/native');
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'bench-serve-')), 'tiny');
  await createTinyModel(dir, {});
  return dir;
}

/** Spawns a server that logs {"port":N} on stdout; resolves once it listens. */
function spawnServer(args, env = {}) {
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d) => {
      buf += d;
      const m = /"port":(\d+)/.exec(buf);
      if (!m) return;
      proc.stdout.off('data', onData);
      proc.stdout.resume(); // keep draining the request log
      resolve({ proc, port: Number(m[1]) });
    };
    proc.stdout.on('data', onData);
    proc.on('exit', (code) => reject(new Error(`server exited early (${code})`)));
  });
}

const RAW_APP = `const u = require(${JSON.stringify(require.resolve('@trufflesuite/uws-js-unofficial/package.json').replace('package.json', `binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`))});
u.App().get('/health', (res) => { res.cork(() => res.writeHeader('Content-Type', 'application/json').end('{"status":"ok","transport":"native"}')); })
  .listen('127.0.0.1', 0, (s) => console.log(JSON.stringify({ port: u.us_socket_local_port(s) })));`;

/** Pipelined GET /health for `seconds`; returns responses per second. */
async function healthLoad(port, seconds, conns = 8, depth = 16) {
  const req = 'GET /health HTTP/1.1\r\nHost: bench\r\n\r\n';
  let done = 0;
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from(
      { length: conns },
      () =>
        new Promise((resolve) => {
          const s = net.connect(port, '127.0.0.1');
          let inflight = 0;
          let pending = '';
          const fill = () => {
            let out = '';
            for (; inflight < depth; inflight++) out += req;
            s.write(out);
          };
          s.on('connect', fill);
          s.on('data', (d) => {
            pending += d.toString('latin1');
            for (let i = pending.indexOf('"}'); i >= 0; i = pending.indexOf('"}')) {
              pending = pending.slice(i + 2);
              inflight--;
              done++;
            }
            if (Date.now() < end) fill();
            else {
              s.destroy();
              resolve();
            }
          });
        })
    )
  );
  return done / seconds;
}

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

/** One streamed completion: latency, time to first text, generated tokens. */
async function complete(port, i) {
  const started = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}/v1/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      prompt: `Story ${i}: once upon a time`,
      max_tokens: 64,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  let ttft;
  let tokens = 0;
  let text = '';
  for await (const chunk of res.body) {
    text += Buffer.from(chunk).toString();
    if (ttft === undefined && text.includes('"text":"')) ttft = performance.now() - started;
  }
  const usage = /"completion_tokens":(\d+)/.exec(text);
  if (usage) tokens = Number(usage[1]);
  return { ms: performance.now() - started, ttft: ttft ?? performance.now() - started, tokens };
}

async function generationLevel(port, clients) {
  const perClient = Math.max(1, Math.ceil(Math.max(clients, 8) / clients));
  const results = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      for (let k = 0; k < perClient; k++) results.push(await complete(port, c * 1000 + k));
    })
  );
  const seconds = (performance.now() - started) / 1000;
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const rss = Number(/tinyforge_process_resident_memory_bytes (\d+)/.exec(metrics)?.[1] ?? 0);
  const ms = results.map((r) => r.ms);
  const ttft = results.map((r) => r.ttft);
  return {
    clients,
    requests: results.length,
    reqPerSec: results.length / seconds,
    p50Ms: pct(ms, 50),
    p99Ms: pct(ms, 99),
    p99TtftMs: pct(ttft, 99),
    tokensPerSec: results.reduce((s, r) => s + r.tokens, 0) / seconds,
    rssMB: rss / 2 ** 20,
  };
}

const model = await pickModel();
console.log(`model: ${model}\ncpu: ${os.cpus()[0]?.model} x${os.cpus().length}, load ${os.loadavg()[0].toFixed(1)}`);

// 1. HTTP overhead.
const rawFile = path.join(mkdtempSync(path.join(os.tmpdir(), 'bench-uws-')), 'raw.cjs');
writeFileSync(rawFile, RAW_APP);
const raw = await spawnServer([rawFile]);
const t0 = performance.now();
const ours = await spawnServer([CLI, 'serve', '--dir', model, '--port', '0'], { LOG_LEVEL: 'info' });
while (
  (await fetch(`http://127.0.0.1:${ours.port}/ready`).then(
    (r) => r.status,
    () => 0
  )) !== 200
)
  await new Promise((r) => setTimeout(r, 5));
const coldStartMs = performance.now() - t0;
const passes = { raw: [], ours: [] };
for (let i = 0; i < PASSES; i++) {
  passes.raw.push(await healthLoad(raw.port, 3));
  passes.ours.push(await healthLoad(ours.port, 3));
}
raw.proc.kill();
const health = { rawReqPerSec: median(passes.raw), oursReqPerSec: median(passes.ours) };
console.log(`\nGET /health (8 conns x 16 pipelined, median of ${PASSES} x 3 s)`);
console.log(`  raw uWebSockets.js  ${health.rawReqPerSec.toFixed(0).padStart(8)} req/s`);
console.log(
  `  foremforge serve    ${health.oursReqPerSec.toFixed(0).padStart(8)} req/s   ${(health.oursReqPerSec / health.rawReqPerSec).toFixed(2)}x (goal >= 0.8x; one JSON log line per request)`
);
console.log(`cold start to /ready: ${coldStartMs.toFixed(0)} ms (goal < 1000)`);

// 3. Generation.
console.log('\n/v1/completions, 64 greedy tokens, streamed');
console.log('clients  req/s   p50 ms   p99 ms  p99 TTFT ms  gen tok/s  RSS MB');
const levels = [];
for (const clients of [1, 8, 32]) {
  const r = await generationLevel(ours.port, clients);
  levels.push(r);
  console.log(
    `${String(clients).padStart(7)}  ${r.reqPerSec.toFixed(2).padStart(5)}  ${r.p50Ms.toFixed(0).padStart(7)}  ${r.p99Ms.toFixed(0).padStart(7)}  ${r.p99TtftMs.toFixed(0).padStart(11)}  ${r.tokensPerSec.toFixed(1).padStart(9)}  ${r.rssMB.toFixed(0).padStart(6)}`
  );
}
ours.proc.kill('SIGTERM');

const outDir = path.join(ROOT, 'benches/results');
mkdirSync(outDir, { recursive: true });
const file = path.join(outDir, `serve-${new Date().toISOString().slice(0, 10)}.json`);
writeFileSync(
  file,
  `${JSON.stringify({ model, cpu: os.cpus()[0]?.model, cores: os.cpus().length, load: os.loadavg()[0], coldStartMs, health, passes, levels }, null, 2)}\n`
);
console.log(`\nwrote ${path.relative(ROOT, file)}`);
process.exit(0);
