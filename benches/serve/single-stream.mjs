// Single-stream decode and prefill, no HTTP: our engine (the native InferenceSession on the int8
// export, one slot) against llama.cpp (node-llama-cpp on the Q8_0 GGUF). Each run is its own
// child process (`node single-stream.mjs '<json>'`, result = last stdout line) so two runtimes
// never share a process or its thread pools.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { llamaSingleStream, rates } from '../llama-cpp.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');

// Plain prose, so greedy decoding runs on instead of stopping at EOS.
export const PROSE =
  'The history of the printing press begins in the workshops of fifteenth century Europe, where ' +
  'goldsmiths and merchants experimented with movable metal type, oil based inks and screw presses ' +
  'borrowed from wine makers. Within fifty years presses were running in more than two hundred ' +
  'cities, and the price of a book fell so far that students, clerks and craftsmen could own one. ' +
  'Printers standardized spelling, numbered pages, added indexes and title pages, and shipped ' +
  'pamphlets along the same rivers and roads that carried wool, salt and grain. ';

const now = () => performance.now();

async function ours({ dir, threads, spinning, decodePrompt, prefillPrompt, newTokens }) {
  const native = createRequire(import.meta.url)(path.join(ROOT, 'crates/node/index.cjs'));
  const t0 = now();
  const session = await native.InferenceSession.load(dir, { threads, slots: 1, ...(spinning === undefined ? {} : { spinning }) });
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

/** Runs one contender in a child process; `{ error }` when it failed. */
export function singleStream(args) {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), JSON.stringify(args)], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) return { error: (r.stderr ?? '').trim().split('\n').slice(-3).join(' | ') || `exit ${r.status}` };
  return JSON.parse((r.stdout ?? '').trim().split('\n').pop());
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2]) {
  const args = JSON.parse(process.argv[2]);
  const out = await (args.kind === 'ours' ? ours(args) : llamaSingleStream(args));
  console.log(JSON.stringify(out));
}
