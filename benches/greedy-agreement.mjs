#!/usr/bin/env node
// Greedy-agreement bench (issue 9's goal "greedy 64-token continuations of 10 fixed prompts agree
// with fp32 on >= 95% of tokens (int8), 85% (int4)"): the same metric measured where we did not
// build the runtime, so our figures have a reference. llama.cpp (node-llama-cpp) decodes the SAME
// token ids as test/python/onnx_quality.py (benches/anchors/onnx_greedy.py tokenizes them and runs
// our ONNX exports) from F32 / Q8_0 / Q4_1 GGUFs whose weights are our exports' weights (F32 ==
// our fp32 export's values, checked as a multiset). Free-running: a divergence costs every later
// token; teacher-forced top-1 feeds the reference's continuation. Deterministic, not a timing bench.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LLAMA_VERSION, loadLlama } from './llama-cpp.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const GGUF =
  process.env.TINYFORGE_SMOLLM2_GGUF ??
  path.join(os.homedir(), '.cache/tinyforge/models/smollm2-135m-instruct/gguf/SmolLM2-135M-Instruct.Q4_1.gguf');
const OUT = path.join(os.tmpdir(), 'tinyforge-bench-agreement');
const PYTHON = process.env.PYTHON ?? 'python3';
const NEW_TOKENS = 64;
// Ids of at most ~30 prompt tokens + 64 new ones.
const CONTEXT = 256;

/** A GGUF with every weight in `type` (benches/anchors/gguf_retype.py), made once per OUT. */
function retyped(type) {
  const out = path.join(OUT, `SmolLM2-135M-Instruct.${type.toUpperCase()}.gguf`);
  if (!existsSync(out)) execFileSync(PYTHON, [path.join(HERE, 'anchors/gguf_retype.py'), GGUF, out, type], { stdio: 'inherit' });
  return out;
}

/** Our ONNX export of the shipped GGUF (always fresh: the figures are about the current exporter). */
function exported(quantize) {
  const dir = path.join(OUT, quantize === 'none' ? 'fp32' : quantize);
  const cli = path.join(ROOT, 'dist/cli/index.js');
  const args = [cli, 'export', '--model', GGUF, '--out', dir, '--quantize', quantize, '--overwrite', '--no-quality'];
  // A registry of its own, so bench exports do not become rows of the user's.
  const env = { ...process.env, TINYFORGE_HOME: path.join(OUT, 'home') };
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`export --quantize ${quantize} failed: ${r.stderr.trim().slice(-400)}`);
  const file = { none: 'model.onnx', int8: 'model_quantized.onnx', int4: 'model_q4.onnx' }[quantize];
  return { dir, model: path.join(dir, 'onnx', file) };
}

/** Greedy runs of our exports through Python onnxruntime; also the prompt ids llama.cpp is fed. */
function onnxRuns(f32Gguf) {
  const fp32 = exported('none');
  const int8 = exported('int8');
  const int4 = exported('int4');
  const out = path.join(OUT, 'onnx-greedy.json');
  const args = [path.join(HERE, 'anchors/onnx_greedy.py'), '--tokenizer', path.join(fp32.dir, 'tokenizer.json'), '--out', out];
  args.push('--model', 'fp32', fp32.model, '--model', 'int8', int8.model, '--model', 'int4', int4.model);
  args.push('--unoptimized', 'fp32-unoptimized', fp32.model, '--check-weights', f32Gguf, '--new-tokens', String(NEW_TOKENS));
  execFileSync(PYTHON, args, { stdio: 'inherit' });
  return JSON.parse(readFileSync(out, 'utf8'));
}

/**
 * One llama.cpp configuration: greedy continuations of every prompt (EOG tokens included and
 * decoding goes on past them, as onnx_quality.py's loop does) and, per `forcedOn` reference, the
 * top-1 at each position when fed that reference's continuation.
 */
async function llamaRun(lib, { gguf, threads, kv, flash }, prompts, forcedOn = {}) {
  const model = await lib.loadModel({ modelPath: gguf });
  const ctx = await model.createContext({
    contextSize: CONTEXT,
    batchSize: CONTEXT,
    threads: { ideal: threads, min: threads },
    flashAttention: flash,
    experimentalKvCacheKeyType: kv,
    experimentalKvCacheValueType: kv,
  });
  const seq = ctx.getSequence();
  const greedy = [];
  for (const prompt of prompts) {
    await seq.clearHistory();
    const out = [];
    for await (const token of seq.evaluate(prompt, { temperature: 0, yieldEogToken: true })) {
      out.push(token);
      if (out.length >= NEW_TOKENS) break;
    }
    greedy.push(out);
  }
  const forced = {};
  for (const [name, refs] of Object.entries(forcedOn)) {
    forced[name] = [];
    for (const [i, prompt] of prompts.entries()) {
      await seq.clearHistory();
      const fed = [...prompt, ...refs[i].slice(0, -1)];
      const next = { generateNext: { token: true, options: { temperature: 0 } } };
      const res = await seq.controlledEvaluate(fed.map((t, k) => (k >= prompt.length - 1 ? [t, next] : t)));
      forced[name].push(res.slice(prompt.length - 1).map((r) => r?.next?.token ?? -1));
    }
  }
  await ctx.dispose();
  await model.dispose();
  return { greedy, forced };
}

/** Position-by-position agreement of `cand` with `ref` (lists of continuations). */
function agreement(cand, ref) {
  let same = 0;
  let total = 0;
  const firstDivergence = ref.map((r, i) => {
    let first = r.length;
    for (let k = 0; k < r.length; k++) {
      if (cand[i][k] === r[k]) same += 1;
      else if (first === r.length) first = k;
    }
    total += r.length;
    return first;
  });
  return {
    agreement: same / total,
    identical: firstDivergence.filter((f) => f === NEW_TOKENS).length,
    meanFirstDivergence: firstDivergence.reduce((a, b) => a + b, 0) / firstDivergence.length,
    firstDivergence,
  };
}

function gitHead() {
  const r = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

async function main() {
  if (!existsSync(GGUF)) throw new Error(`no GGUF at ${GGUF} (npx foremforge pull --format gguf, or set TINYFORGE_SMOLLM2_GGUF)`);
  if (!existsSync(path.join(ROOT, 'dist/cli/index.js'))) throw new Error('run `npm run build:ts` first');
  mkdirSync(OUT, { recursive: true });
  const f32 = retyped('f32');
  const q8 = retyped('q8_0');
  const onnx = onnxRuns(f32);
  const { prompts } = onnx;
  const ours = Object.fromEntries(Object.entries(onnx.models).map(([k, v]) => [k, v.greedy]));

  const { getLlama } = await loadLlama();
  const lib = await getLlama({ build: 'never', gpu: false, logLevel: 'error' });
  // The reference: F32 weights, F32 KV cache (ours keeps fp32 K/V), plain attention, 1 thread.
  const base = { gguf: f32, threads: 1, kv: 'F32', flash: false };
  const configs = {
    'llama F32': base,
    'llama F32, 2 threads': { ...base, threads: 2 },
    'llama F32, F16 KV cache (its default)': { ...base, kv: 'F16' },
    'llama F32, flash attention': { ...base, flash: true },
    'llama Q8_0': { ...base, gguf: q8 },
    'llama Q4_1': { ...base, gguf: GGUF },
  };
  const llama = {};
  for (const [name, config] of Object.entries(configs)) {
    const forcedOn =
      name === 'llama F32' ? { 'ORT fp32': ours.fp32 } : /Q8_0|Q4_1/.test(name) ? { 'llama F32': llama['llama F32'].greedy } : {};
    console.error(`${name}: decoding`);
    llama[name] = await llamaRun(lib, config, prompts, forcedOn);
  }

  const runs = {
    ...Object.fromEntries(Object.entries(llama).map(([k, v]) => [k, v.greedy])),
    'ORT fp32': ours.fp32,
    'ORT fp32, graph optimizations off': ours['fp32-unoptimized'],
    'ORT int8': ours.int8,
    'ORT int4': ours.int4,
  };
  const forced = (cand, ref) => agreement(cand, ref).agreement;
  const pairs = [
    ['same weights, same runtime, numerics perturbed', 'llama F32, 2 threads', 'llama F32'],
    ['same weights, same runtime, numerics perturbed', 'llama F32, F16 KV cache (its default)', 'llama F32'],
    ['same weights, same runtime, numerics perturbed', 'llama F32, flash attention', 'llama F32'],
    ['same weights, same runtime, numerics perturbed', 'ORT fp32, graph optimizations off', 'ORT fp32'],
    ['same weights, other runtime', 'ORT fp32', 'llama F32', forced(llama['llama F32'].forced['ORT fp32'], ours.fp32)],
    ['quantized vs F32, llama.cpp', 'llama Q8_0', 'llama F32', forced(llama['llama Q8_0'].forced['llama F32'], runs['llama F32'])],
    ['quantized vs F32, llama.cpp', 'llama Q4_1', 'llama F32', forced(llama['llama Q4_1'].forced['llama F32'], runs['llama F32'])],
    ['quantized vs fp32, ours (ORT)', 'ORT int8', 'ORT fp32', forced(onnx.models.int8.forced, ours.fp32)],
    ['quantized vs fp32, ours (ORT)', 'ORT int4', 'ORT fp32', forced(onnx.models.int4.forced, ours.fp32)],
    ['ours quantized vs llama.cpp F32', 'ORT int8', 'llama F32'],
    ['ours quantized vs llama.cpp F32', 'ORT int4', 'llama F32'],
  ].map(([group, cand, ref, teacherForced]) => ({
    group,
    candidate: cand,
    reference: ref,
    ...agreement(runs[cand], runs[ref]),
    teacherForcedTop1: teacherForced ?? null,
  }));

  const pct = (x) => (x == null ? '     -' : `${(100 * x).toFixed(1).padStart(5)}%`);
  console.log(`\nGreedy agreement, SmolLM2-135M-Instruct, ${prompts.length} prompts x ${NEW_TOKENS} tokens (onnx_quality.py's)`);
  console.log(
    `weights: F32 GGUF == our fp32 export as a multiset of ${onnx.weights_vs_gguf.gguf_values} values: ${onnx.weights_vs_gguf.identical}`
  );
  console.log(`${'candidate'.padEnd(38)} ${'reference'.padEnd(10)} free-run identical 1st-diverge forced-top1`);
  let group = '';
  for (const p of pairs) {
    if (p.group !== group) console.log(`-- ${(group = p.group)}`);
    const cells = [
      p.candidate.padEnd(38),
      p.reference.padEnd(10),
      pct(p.agreement).padStart(8),
      `${p.identical}/${prompts.length}`.padStart(9),
    ];
    console.log(`${cells.join(' ')} ${p.meanFirstDivergence.toFixed(1).padStart(11)} ${pct(p.teacherForcedTop1).padStart(11)}`);
  }
  console.log('1st-diverge: mean position of the first differing token (64 = identical); forced: top-1 fed the reference continuation');

  const date = new Date().toISOString().slice(0, 10);
  const file = path.join(HERE, 'results', `agreement-${date}.json`);
  const report = {
    bench: 'greedy-agreement',
    date: new Date().toISOString(),
    commit: gitHead(),
    cpu: os.cpus()[0]?.model ?? null,
    gguf: path.basename(GGUF),
    newTokens: NEW_TOKENS,
    versions: { nodeLlamaCpp: LLAMA_VERSION, onnxruntime: onnx.ort_version },
    settings: {
      llama: Object.fromEntries(Object.entries(configs).map(([k, c]) => [k, { ...c, gguf: path.basename(c.gguf) }])),
      ortThreads: onnx.threads,
    },
    weightsVsGguf: onnx.weights_vs_gguf,
    prompts: onnx.texts,
    promptIds: prompts,
    pairs,
    continuations: runs,
  };
  const tmp = `${file}.tmp`;
  // One line per token list, not per token.
  const json = JSON.stringify(report, null, 1).replace(/\[\s+(-?\d[\d,\s-]*?)\s+\]/g, (_, ids) => `[${ids.replace(/\s+/g, '')}]`);
  writeFileSync(tmp, `${json}\n`);
  renameSync(tmp, file);
  console.log(`wrote ${path.relative(ROOT, file)}`);
}

await main();
