#!/usr/bin/env node
// Export bench (issue 9): our fp32 / int8 / int4 ONNX exports through the native InferenceSession
// against llama.cpp (node-llama-cpp, on the shipped Q4_1 GGUF) and transformers.js (our int8
// folder). Each contender runs in its own child process (`--one <name>`) so two ONNX Runtimes
// never share a process; every contender runs at 1 and at 2 threads, and the ratios are given
// per thread count and at each contender's best.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ortExtraSessionOptions } from '../dist/ts/native.js';
import { llamaSingleStream, rates } from './llama-cpp.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const ANCHORS = path.join(HERE, 'anchors');
const GGUF =
  process.env.TINYFORGE_SMOLLM2_GGUF ??
  path.join(os.homedir(), '.cache/tinyforge/models/smollm2-135m-instruct/gguf/SmolLM2-135M-Instruct.Q4_1.gguf');
const OUT = path.join(os.tmpdir(), 'tinyforge-bench-export');
const NEW_TOKENS = 128;
const DECODE_PROMPT = 127;
const PREFILL_PROMPT = 512;
// Decode reads every weight once per token, so bytes/token ≈ weight bytes; ~30 GB/s is this
// class of server core's sustained single-socket read bandwidth (perf-anchors.md).
const BANDWIDTH = Number(process.env.BENCH_BANDWIDTH_GBS ?? 30) * 1e9;

// Plain prose so greedy decoding runs on instead of stopping at EOS.
const PROSE =
  'The history of the printing press begins in the workshops of fifteenth century Europe, where ' +
  'goldsmiths and merchants experimented with movable metal type, oil based inks and screw presses ' +
  'borrowed from wine makers. Within fifty years presses were running in more than two hundred ' +
  'cities, and the price of a book fell so far that students, clerks and craftsmen could own one. ' +
  'Printers standardized spelling, numbered pages, added indexes and title pages, and shipped ' +
  'pamphlets along the same rivers and roads that carried wool, salt and grain. Scholars argue about ' +
  'how quickly ideas spread, but the ledgers of booksellers show steady growth in sermons, almanacs, ' +
  'grammars, maps, medical manuals and collections of songs. ';

const require = createRequire(import.meta.url);
const now = () => performance.now();

/** Prose cut at a word boundary so our tokenizer gives exactly `n` tokens (or the closest below). */
function promptOf(tokenizer, n) {
  const words = PROSE.repeat(Math.ceil((n * 1.5) / 100) + 2)
    .split(' ')
    .filter(Boolean);
  let lo = 1;
  let hi = words.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (tokenizer.encode(words.slice(0, mid).join(' ')).length <= n) lo = mid;
    else hi = mid - 1;
  }
  return words.slice(0, lo).join(' ');
}

function dirBytes(dir) {
  let total = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && /\.onnx(_data)?$|\.onnx\.data$/.test(e.name)) total += statSync(path.join(e.parentPath, e.name)).size;
  }
  return total;
}

/** Decode rate from per-token timestamps: the first token closes prefill, the rest are decode. */

async function runOurs(dir, threads, prompts, spinning) {
  const native = require(path.join(ROOT, 'crates/node/index.cjs'));
  native.ensureRuntime();
  const t0 = now();
  // `spinning` unset: the API's default (ORT's threads spin during a step and stop after it).
  const session = await native.InferenceSession.load(dir, { threads, slots: 1, ...(spinning === undefined ? {} : { spinning }) });
  const loadMs = now() - t0;
  const gen = async (prompt, maxTokens) => {
    const times = [];
    const start = now();
    const r = await session.generate(prompt, { maxTokens, temperature: 0, chatTemplate: false }, { onDelta: () => times.push(now()) });
    return rates(start, times, r.usage.promptTokens);
  };
  await gen(prompts.decode, 8);
  const decode = await gen(prompts.decode, NEW_TOKENS);
  const prefill = await gen(prompts.prefill, 1);
  session.close?.();
  return { loadMs, decode, prefill };
}

function runLlama(gguf, threads, prompts) {
  return llamaSingleStream({ gguf, threads, decodePrompt: prompts.decode, prefillPrompt: prompts.prefill, newTokens: NEW_TOKENS });
}

async function runTjs(dir, threads, prompts) {
  const resolved = createRequire(path.join(ANCHORS, 'package.json')).resolve('@huggingface/transformers');
  const tjs = await import(pathToFileURL(resolved).href);
  tjs.env.allowRemoteModels = false;
  tjs.env.allowLocalModels = true;
  tjs.env.localModelPath = path.dirname(dir);
  const t0 = now();
  const tokenizer = await tjs.AutoTokenizer.from_pretrained(path.basename(dir));
  const model = await tjs.AutoModelForCausalLM.from_pretrained(path.basename(dir), {
    dtype: 'q8',
    // Our sessions' config on this CPU (the int8 MatMulInteger exact on x86 CPUs without VNNI).
    session_options: { intraOpNumThreads: threads, interOpNumThreads: 1, extra: ortExtraSessionOptions() },
  });
  const loadMs = now() - t0;
  const gen = async (text, maxTokens) => {
    const inputs = tokenizer(text);
    const promptTokens = inputs.input_ids.dims[1];
    const times = [];
    // The first put is the prompt; every later one is one generated token.
    const streamer = { put: () => times.push(now()), end: () => {} };
    const start = now();
    await model.generate({ ...inputs, max_new_tokens: maxTokens, min_new_tokens: maxTokens, do_sample: false, streamer });
    return rates(start, times.slice(times.length - maxTokens), promptTokens);
  };
  await gen(prompts.decode, 8);
  const decode = await gen(prompts.decode, NEW_TOKENS);
  const prefill = await gen(prompts.prefill, 1);
  await model.dispose();
  return { loadMs, decode, prefill, version: '4.3.2' };
}

/** Runs one contender in a child process; its JSON result is the last stdout line. */
function child(args) {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--one', JSON.stringify(args)], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  const last = (r.stdout ?? '').trim().split('\n').pop();
  if (r.status !== 0) return { error: `${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}` };
  return JSON.parse(last);
}

async function one(args) {
  const fn = { ours: runOurs, llama: runLlama, tjs: runTjs }[args.kind];
  const out = await fn(args.path, args.threads, args.prompts, args.spinning);
  console.log(JSON.stringify(out));
}

function exportFolder(quantize) {
  const dir = path.join(OUT, quantize === 'none' ? 'fp32' : quantize);
  const t0 = now();
  const cli = path.join(ROOT, 'dist/cli/index.js');
  const args = [cli, 'export', '--model', GGUF, '--out', dir, '--quantize', quantize, '--overwrite'];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`export ${quantize} failed: ${r.stderr.trim().slice(-400)}`);
  return { dir, exportS: (now() - t0) / 1000, bytes: dirBytes(dir), perplexity: exportPerplexity(dir) };
}

/** The held-out perplexity `foremforge export` measured into tinyforge.json's `quality`, if any. */
function exportPerplexity(dir) {
  try {
    const q = JSON.parse(readFileSync(path.join(dir, 'tinyforge.json'), 'utf8')).quality;
    // `quality.model.perplexity` (the written file; `quality.fp32` is its reference).
    const v = q?.model?.perplexity ?? null;
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

/** The shipped GGUF re-quantized to Q8_0 by benches/anchors/gguf_q8_0.py (PyPI `gguf`). */
function q8Gguf() {
  const out = path.join(OUT, 'SmolLM2-135M-Instruct.Q8_0.gguf');
  if (existsSync(out) && statSync(out).mtimeMs > statSync(GGUF).mtimeMs) return { path: out };
  const python = process.env.PYTHON ?? 'python3';
  const r = spawnSync(python, [path.join(ANCHORS, 'gguf_q8_0.py'), GGUF, out], { encoding: 'utf8' });
  if (r.status !== 0)
    return { reason: `gguf_q8_0.py failed (pip install gguf): ${(r.stderr ?? r.error?.message ?? '').trim().split('\n').pop()}` };
  return { path: out };
}

const fmt = (v, d = 1) => (v == null || Number.isNaN(v) ? '—' : v.toFixed(d));

async function main() {
  if (!existsSync(GGUF)) {
    console.log(`skip: export bench (no GGUF at ${GGUF}; run \`npx foremforge pull --format gguf\`)`);
    return;
  }
  if (!existsSync(path.join(ROOT, 'dist/cli/index.js'))) throw new Error('run `npm run build:ts` first');
  mkdirSync(OUT, { recursive: true });
  const exports = { fp32: exportFolder('none'), int8: exportFolder('int8'), int4: exportFolder('int4') };
  const { Tokenizer } = require(path.join(ROOT, 'crates/node/index.cjs'));
  const tok = Tokenizer.fromFile(path.join(exports.int8.dir, 'tokenizer.json'));
  const prompts = { decode: promptOf(tok, DECODE_PROMPT), prefill: promptOf(tok, PREFILL_PROMPT) };

  // Every contender at 1 and at 2 threads (each has its own best: llama.cpp's is often 1 on
  // this VM, ORT's 2), then the ratios at each contender's best count.
  const counts = [1, 2].filter((x) => x <= os.availableParallelism());
  const q8 = q8Gguf();
  if (q8.reason) console.log(`skip: llama.cpp Q8_0 (${q8.reason})`);
  const byThreads = {};
  for (const threads of counts) byThreads[threads] = contenders({ threads, exports, q8, prompts });
  const best = bestOf(byThreads);
  const cpu = (os.cpus()[0]?.model ?? 'unknown CPU').trim();
  console.log(
    `SmolLM2-135M-Instruct, ${cpu}; decode = ${NEW_TOKENS} greedy tokens after a ${DECODE_PROMPT}-token prompt; prefill = ${PREFILL_PROMPT}-token prompt`
  );
  for (const threads of counts) {
    console.log(`\n${threads} thread(s):`);
    printTable(withRatios(byThreads[threads]));
  }
  console.log('\neach contender at its best thread count (decode):');
  printTable(withRatios(best));

  const date = new Date().toISOString().slice(0, 10);
  mkdirSync(path.join(HERE, 'results'), { recursive: true });
  const file = path.join(HERE, 'results', `export-${date}.json`);
  const json = {
    date,
    cpu,
    bandwidthGBs: BANDWIDTH / 1e9,
    byThreads: Object.fromEntries(counts.map((t) => [t, withRatios(byThreads[t])])),
    best: withRatios(best),
  };
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  console.log(`wrote ${path.relative(ROOT, file)}`);
}

const LLAMA_Q41 = 'llama.cpp Q4_1 (node-llama-cpp)';
const TJS = 'transformers.js int8 (our folder)';

/** All contenders at one thread count, each in its own child process. */
function contenders({ threads, exports, q8, prompts }) {
  const rows = [];
  const add = (name, r, extra) => {
    if (r.error) console.log(`skip: ${name} at ${threads} thread(s) (${r.error})`);
    else rows.push({ name, threads, ...extra, ...r });
  };
  add(LLAMA_Q41, child({ kind: 'llama', path: GGUF, threads, prompts }), { bytes: statSync(GGUF).size });
  if (q8.path)
    add('llama.cpp Q8_0 (node-llama-cpp)', child({ kind: 'llama', path: q8.path, threads, prompts }), { bytes: statSync(q8.path).size });
  for (const [name, e] of Object.entries(exports)) {
    const r = child({ kind: 'ours', path: e.dir, threads, prompts });
    add(`tinyforge ${name} (ORT)`, r, { bytes: e.bytes, exportS: e.exportS, perplexity: e.perplexity });
  }
  // Our engine's default leaves ORT's idle pool threads asleep between ops; `serve` spins, as
  // transformers.js (ORT's default) and llama.cpp's pool do: int8 runs both ways.
  const spin = child({ kind: 'ours', path: exports.int8.dir, threads, prompts, spinning: true });
  add('tinyforge int8 (ORT, spinning)', spin, { bytes: exports.int8.bytes, perplexity: exports.int8.perplexity });
  add(TJS, child({ kind: 'tjs', path: exports.int8.dir, threads, prompts }), {
    bytes: exports.int8.bytes,
    perplexity: exports.int8.perplexity,
  });
  return rows;
}

/** Per contender, its row at the thread count where it decoded fastest. */
function bestOf(byThreads) {
  const best = new Map();
  for (const rows of Object.values(byThreads))
    for (const r of rows) if (!best.has(r.name) || r.decode.decodeTokS > best.get(r.name).decode.decodeTokS) best.set(r.name, r);
  return [...best.values()];
}

/** Rows with ratios against llama.cpp Q4_1 and transformers.js from the same set of rows. */
function withRatios(rows) {
  const base = rows.find((r) => r.name === LLAMA_Q41);
  const tj = rows.find((r) => r.name === TJS);
  const prefillOf = (r) => (r.prefill.promptTokens * 1000) / r.prefill.ttftMs;
  return rows.map((r) => ({
    ...r,
    ceilingTokS: BANDWIDTH / r.bytes,
    decodeOfCeiling: r.decode.decodeTokS / (BANDWIDTH / r.bytes),
    prefillTokS: prefillOf(r),
    decodeVsLlama: base ? r.decode.decodeTokS / base.decode.decodeTokS : null,
    decodeVsTjs: tj ? r.decode.decodeTokS / tj.decode.decodeTokS : null,
    prefillVsLlama: base ? prefillOf(r) / prefillOf(base) : null,
  }));
}

function printTable(rows) {
  const table = [
    [
      'contender',
      'threads',
      'export s',
      'file MB',
      'perplexity',
      'load ms',
      'decode tok/s',
      'x llama Q4_1',
      'x tjs',
      '% BW ceiling',
      'prefill tok/s',
      'x llama',
    ],
    ...rows.map((r) => [
      r.name,
      String(r.threads),
      fmt(r.exportS),
      fmt(r.bytes / 1e6),
      fmt(r.perplexity, 2),
      fmt(r.loadMs, 0),
      `${fmt(r.decode.decodeTokS)} (${r.decode.tokens} tok)`,
      fmt(r.decodeVsLlama, 2),
      fmt(r.decodeVsTjs, 2),
      `${fmt(r.decodeOfCeiling * 100, 0)}% of ${fmt(r.ceilingTokS, 0)}`,
      `${fmt(r.prefillTokS, 0)} (${r.prefill.promptTokens} tok)`,
      fmt(r.prefillVsLlama, 2),
    ]),
  ];
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  for (const row of table) console.log(row.map((c, i) => c.padEnd(widths[i])).join('  '));
}

const i = process.argv.indexOf('--one');
if (i >= 0) await one(JSON.parse(process.argv[i + 1]));
else await main();
