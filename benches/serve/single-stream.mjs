// Single-stream decode and prefill, no HTTP: our engine (the native InferenceSession on the int8
// export, one slot) against llama.cpp (node-llama-cpp on the Q8_0 GGUF). Each run is its own
// child process (`node single-stream.mjs '<json>'`, result = last stdout line) so two runtimes
// never share a process or its thread pools.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const ANCHORS = path.join(ROOT, 'benches/anchors');
export const LLAMA_PKG = 'node-llama-cpp';
export const LLAMA_VERSION = '3.22.1';

// Plain prose, so greedy decoding runs on instead of stopping at EOS.
export const PROSE =
  'The history of the printing press begins in the workshops of fifteenth century Europe, where ' +
  'goldsmiths and merchants experimented with movable metal type, oil based inks and screw presses ' +
  'borrowed from wine makers. Within fifty years presses were running in more than two hundred ' +
  'cities, and the price of a book fell so far that students, clerks and craftsmen could own one. ' +
  'Printers standardized spelling, numbered pages, added indexes and title pages, and shipped ' +
  'pamphlets along the same rivers and roads that carried wool, salt and grain. ';

const now = () => performance.now();

function rates(start, times, promptTokens) {
  const n = times.length;
  return {
    tokens: n,
    promptTokens,
    ttftMs: times[0] - start,
    decodeTokS: n > 1 ? ((n - 1) * 1000) / (times[n - 1] - times[0]) : null,
  };
}

async function ours({ dir, threads, decodePrompt, prefillPrompt, newTokens }) {
  const native = createRequire(import.meta.url)(path.join(ROOT, 'crates/node/index.cjs'));
  const t0 = now();
  const session = await native.InferenceSession.load(dir, { threads, slots: 1 });
  const loadMs = now() - t0;
  const gen = async (prompt, maxTokens) => {
    const times = [];
    const start = now();
    const r = await session.generate(prompt, { maxTokens, temperature: 0, chatTemplate: false }, { onDelta: () => times.push(now()) });
    return rates(start, times, r.usage.promptTokens);
  };
  await gen(decodePrompt, 8);
  const decode = await gen(decodePrompt, newTokens);
  const prefill = await gen(prefillPrompt, 1);
  session.close?.();
  return { loadMs, decode, prefill };
}

/** node-llama-cpp from benches/anchors, installed there (pinned) on first use. */
export async function loadLlama() {
  const installed = () => existsSync(path.join(ANCHORS, 'node_modules', LLAMA_PKG, 'package.json'));
  if (!installed()) {
    const r = spawnSync(
      'npm',
      ['install', '--prefix', ANCHORS, '--no-save', '--no-audit', '--no-fund', '--loglevel=error', `${LLAMA_PKG}@${LLAMA_VERSION}`],
      { env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true' }, encoding: 'utf8' }
    );
    if (r.status !== 0 || !installed()) throw new Error(`npm install ${LLAMA_PKG} failed: ${(r.stderr ?? '').trim().slice(-300)}`);
  }
  const resolved = createRequire(path.join(ANCHORS, 'package.json')).resolve(LLAMA_PKG);
  return import(pathToFileURL(resolved).href);
}

async function llama({ gguf, threads, decodePrompt, prefillPrompt, newTokens }) {
  const { getLlama } = await loadLlama();
  // The prebuilt CPU binary only: a source build would need a toolchain and minutes.
  const lib = await getLlama({ build: 'never', gpu: false, logLevel: 'error' });
  const t0 = now();
  const model = await lib.loadModel({ modelPath: gguf });
  const ctx = await model.createContext({ contextSize: 1024, batchSize: 512, threads });
  const loadMs = now() - t0;
  const seq = ctx.getSequence();
  const gen = async (text, maxTokens) => {
    await seq.clearHistory();
    const tokens = model.tokenize(text);
    const times = [];
    const start = now();
    for await (const _ of seq.evaluate(tokens, { temperature: 0 })) {
      times.push(now());
      if (times.length >= maxTokens) break;
    }
    return rates(start, times, tokens.length);
  };
  await gen(decodePrompt, 8);
  const decode = await gen(decodePrompt, newTokens);
  const prefill = await gen(prefillPrompt, 1);
  await ctx.dispose();
  await model.dispose();
  return { loadMs, decode, prefill, version: LLAMA_VERSION };
}

/** Runs one contender in a child process; `{ error }` when it failed. */
export function singleStream(args) {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), JSON.stringify(args)], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) return { error: (r.stderr ?? '').trim().split('\n').slice(-3).join(' | ') || `exit ${r.status}` };
  return JSON.parse((r.stdout ?? '').trim().split('\n').pop());
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2]) {
  const args = JSON.parse(process.argv[2]);
  const out = await (args.kind === 'ours' ? ours(args) : llama(args));
  console.log(JSON.stringify(out));
}
