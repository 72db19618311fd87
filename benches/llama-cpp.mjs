// llama.cpp through node-llama-cpp (installed on demand into benches/anchors from npm, its
// prebuilt CPU binary only), measured the one way both the export and the serve bench use: load,
// a warm-up, greedy decode of `newTokens` after `decodePrompt`, and prefill of `prefillPrompt`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ANCHORS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'anchors');
export const LLAMA_PKG = 'node-llama-cpp';
export const LLAMA_VERSION = '3.22.1';

const now = () => performance.now();

/** Token timing of one generation: time to first token and decode rate after it. */
export function rates(start, times, promptTokens) {
  const n = times.length;
  return {
    tokens: n,
    promptTokens,
    ttftMs: times[0] - start,
    decodeTokS: n > 1 ? ((n - 1) * 1000) / (times[n - 1] - times[0]) : null,
  };
}

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

export async function llamaSingleStream({ gguf, threads, decodePrompt, prefillPrompt, newTokens }) {
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
