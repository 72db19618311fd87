#!/usr/bin/env node
// Tokenizer encode throughput: `npm run bench -- tokenizer` (or `node benches/tokenizer.mjs`).
// Corpus: >= 10 MB of real English-ish text from the installed packages (/usr/share/common-licenses/*,
// /usr/share/doc/*/copyright and changelog*.gz, de-duplicated), split into ~4 KB chunks at
// newlines. Contenders, side by side in one run:
//   - ours: @tinyforge/native Tokenizer (SmolLM2 from its GGUF, else the committed fixture
//     tokenizer.json; the same tokenizer), `encode` per chunk on one thread, and `encodeBatch`
//     over all chunks (rayon, every core);
//   - gpt-tokenizer 4.0.0 (pure JS; cl100k_base and r50k_base encodings);
//   - @huggingface/transformers 4.3.2 AutoTokenizer on our SmolLM2 tokenizer.json, offline.
// Anchors install on demand into benches/anchors (never into the project's dependencies); one
// that cannot be installed or loaded prints a skip line. Each row: one warm-up pass ("cold"),
// then the median of 3 passes (BENCH_PASSES to change). Results: benches/results/tokenizer-<date>.json.
// Needs the native package built (`npm run build:native`).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { createRequire } from 'node:module';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ANCHORS = path.join(ROOT, 'benches/anchors');
const CORPUS_BYTES = 10_000_000;
const CHUNK_BYTES = 4096;
const PASSES = Number(process.env.BENCH_PASSES ?? 3);
const GOAL = { singleVsGptTokenizer: 2, batchVsGptTokenizer: 3 };

// ---- corpus -------------------------------------------------------------------------------------
function corpusFiles() {
  const files = [];
  const list = (dir) =>
    existsSync(dir)
      ? readdirSync(dir)
          .sort()
          .map((n) => path.join(dir, n))
      : [];
  files.push(...list('/usr/share/common-licenses'));
  for (const pkg of list('/usr/share/doc')) {
    files.push(path.join(pkg, 'copyright'));
    for (const name of existsSync(pkg) ? safeReaddir(pkg) : []) {
      if (/^changelog.*\.gz$/.test(name)) files.push(path.join(pkg, name));
    }
  }
  return files;
}

function safeReaddir(dir) {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function buildCorpus() {
  const seen = new Set();
  const parts = [];
  let bytes = 0;
  let count = 0;
  for (const file of corpusFiles()) {
    let buf;
    try {
      buf = readFileSync(file);
      if (file.endsWith('.gz')) buf = gunzipSync(buf);
    } catch {
      continue;
    }
    // Skip blobs: NUL bytes or invalid UTF-8 mean it is not text.
    if (buf.includes(0)) continue;
    const text = new TextDecoder('utf-8', { fatal: false }).decode(buf);
    if (text.includes('\uFFFD')) continue;
    const hash = createHash('sha1').update(buf).digest('hex');
    if (seen.has(hash)) continue;
    seen.add(hash);
    parts.push(text);
    count += 1;
    bytes += Buffer.byteLength(text);
    if (bytes >= CORPUS_BYTES) break;
  }
  let corpus = parts.join('\n');
  // Cut to CORPUS_BYTES at a newline so runs on the same machine see the same text.
  const buf = Buffer.from(corpus);
  if (buf.length > CORPUS_BYTES) {
    const cut = buf.lastIndexOf(10, CORPUS_BYTES - 1);
    corpus = buf.subarray(0, cut + 1).toString('utf8');
  }
  const chunks = [];
  let start = 0;
  while (start < corpus.length) {
    let end = Math.min(start + CHUNK_BYTES, corpus.length);
    if (end < corpus.length) {
      const nl = corpus.lastIndexOf('\n', end);
      if (nl > start) end = nl + 1;
    }
    chunks.push(corpus.slice(start, end));
    start = end;
  }
  const totalBytes = Buffer.byteLength(corpus);
  return { chunks, totalBytes, files: count, sha1: createHash('sha1').update(corpus).digest('hex') };
}

// ---- anchors ------------------------------------------------------------------------------------
const requireAnchor = createRequire(path.join(ANCHORS, 'package.json'));

function anchorInstalled(name) {
  return existsSync(path.join(ANCHORS, 'node_modules', name, 'package.json'));
}

let installTried = false;
function ensureAnchors() {
  const wanted = Object.keys(JSON.parse(readFileSync(path.join(ANCHORS, 'package.json'), 'utf8')).dependencies);
  if (wanted.every(anchorInstalled) || installTried) return;
  installTried = true;
  console.log('installing bench anchors into benches/anchors (one time) ...');
  const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' };
  const r = spawnSync('npm', ['install', '--prefix', ANCHORS, '--no-audit', '--no-fund', '--loglevel=error'], { env, stdio: 'inherit' });
  if (r.status !== 0) console.log(`skip: npm install in benches/anchors failed (exit ${r.status}); benching what is there`);
}

async function importAnchor(name, subpath = '') {
  if (!anchorInstalled(name)) throw new Error(`${name} is not installed in benches/anchors`);
  const resolved = requireAnchor.resolve(`${name}${subpath}`);
  return import(pathToFileURL(resolved).href);
}

// ---- our tokenizer ------------------------------------------------------------------------------
function smollm2Gguf() {
  const candidates = [process.env.TINYFORGE_SMOLLM2_GGUF, '/tmp/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf'];
  const cache = process.env.TINYFORGE_CACHE ?? path.join(os.homedir(), '.cache', 'tinyforge');
  const walk = (dir, depth) => {
    for (const name of safeReaddir(dir)) {
      const p = path.join(dir, name);
      if (/smollm2.*\.gguf$/i.test(name)) candidates.push(p);
      else if (depth > 0 && !name.includes('.')) walk(p, depth - 1);
    }
  };
  walk(cache, 3);
  return candidates.find((p) => p && existsSync(p));
}

// ---- measuring ----------------------------------------------------------------------------------
// One timed pass: wall seconds, CPU seconds of this process (all threads) and tokens produced.
// CPU time is reported too because a shared machine slows wall time for every row.
async function pass(run) {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const tokens = await run();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  return { seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, tokens };
}

async function measure(run, totalBytes) {
  const cold = await pass(run);
  const warm = [];
  for (let i = 0; i < PASSES; i++) warm.push(await pass(run));
  warm.sort((a, b) => a.seconds - b.seconds);
  const median = warm[Math.floor(warm.length / 2)];
  const mbps = (s) => totalBytes / s / 1e6;
  return {
    mbPerSec: mbps(median.seconds),
    minMbPerSec: mbps(warm.at(-1).seconds),
    maxMbPerSec: mbps(warm[0].seconds),
    mTokensPerSec: median.tokens / median.seconds / 1e6,
    mbPerCpuSecond: mbps(median.cpuSeconds),
    coldMbPerSec: mbps(cold.seconds),
    tokens: median.tokens,
  };
}

function sumLengths(arrays) {
  let n = 0;
  for (const a of arrays) n += a.length;
  return n;
}

// ---- main ---------------------------------------------------------------------------------------
const corpus = buildCorpus();
console.log(
  `load average: ${os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')} (other work on the machine slows every row)`
);
console.log(
  `corpus: ${(corpus.totalBytes / 1e6).toFixed(2)} MB from ${corpus.files} files, ${corpus.chunks.length} chunks of ~4 KB (sha1 ${corpus.sha1.slice(0, 12)})`
);
if (corpus.totalBytes < CORPUS_BYTES * 0.9)
  console.log('note: less than 10 MB of text found under /usr/share; numbers are on what there is');

const rows = [];
const skips = [];
const add = (name, threads, loadMs, result) => {
  rows.push({ name, threads, loadMs, ...result });
  console.log(`  ${name}: ${result.mbPerSec.toFixed(2)} MB/s`);
};
const skip = (name, why) => {
  skips.push({ name, reason: why });
  console.log(`skip: ${name}: ${why}`);
};

// CommonJS package: its exports are assigned in a loop, so take them from the default export.
const { Tokenizer } = (await import('@tinyforge/native')).default;
const gguf = smollm2Gguf();
let t0 = performance.now();
const ours = gguf ? Tokenizer.fromGguf(gguf) : Tokenizer.fromFile(path.join(ROOT, 'test/fixtures/tokenizer/smollm2/tokenizer.json'));
const ourLoadMs = performance.now() - t0;
const ourSource = gguf ? `SmolLM2 GGUF (${path.basename(gguf)})` : 'fixture tokenizer.json (no GGUF found)';
console.log(`our tokenizer: ${ourSource}`);
add(
  'tinyforge encode (1 thread)',
  1,
  ourLoadMs,
  await measure(() => {
    let n = 0;
    for (const c of corpus.chunks) n += ours.encode(c).length;
    return n;
  }, corpus.totalBytes)
);
add(
  `tinyforge encodeBatch (${os.availableParallelism()} threads)`,
  os.availableParallelism(),
  ourLoadMs,
  await measure(() => sumLengths(ours.encodeBatch(corpus.chunks)), corpus.totalBytes)
);
add(
  `tinyforge encodeBatchAsync (${os.availableParallelism()} threads)`,
  os.availableParallelism(),
  ourLoadMs,
  await measure(async () => sumLengths(await ours.encodeBatchAsync(corpus.chunks)), corpus.totalBytes)
);

ensureAnchors();
for (const encoding of ['cl100k_base', 'r50k_base']) {
  const name = `gpt-tokenizer ${encoding} (1 thread)`;
  try {
    t0 = performance.now();
    const mod = await importAnchor('gpt-tokenizer', `/encoding/${encoding}`);
    const loadMs = performance.now() - t0;
    const encode = mod.encode ?? mod.default.encode;
    add(
      name,
      1,
      loadMs,
      await measure(() => {
        let n = 0;
        for (const c of corpus.chunks) n += encode(c).length;
        return n;
      }, corpus.totalBytes)
    );
  } catch (err) {
    skip(name, err.message);
  }
}

{
  const name = '@huggingface/transformers AutoTokenizer (1 thread)';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tinyforge-bench-'));
  try {
    const { AutoTokenizer, env } = await importAnchor('@huggingface/transformers');
    ours.savePretrained(path.join(dir, 'smollm2'));
    env.allowRemoteModels = false;
    env.localModelPath = dir;
    t0 = performance.now();
    const hf = await AutoTokenizer.from_pretrained('smollm2');
    const loadMs = performance.now() - t0;
    const probe = corpus.chunks[0];
    const same = JSON.stringify(hf.encode(probe, { add_special_tokens: false })) === JSON.stringify(Array.from(ours.encode(probe)));
    if (!same) console.log('note: transformers.js ids differ from ours on the first chunk');
    add(
      name,
      1,
      loadMs,
      await measure(() => {
        let n = 0;
        for (const c of corpus.chunks) n += hf.encode(c, { add_special_tokens: false }).length;
        return n;
      }, corpus.totalBytes)
    );
  } catch (err) {
    skip(name, err.message);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- report -------------------------------------------------------------------------------------
const base = rows.find((r) => r.name.startsWith('gpt-tokenizer cl100k_base'));
const ratio = (r) => (base ? r.mbPerSec / base.mbPerSec : null);
const fmt = (x, d = 2) => (x == null ? '-' : x.toFixed(d));
console.log(
  `\n| contender | MB/s median [min-max] | M tokens/s | MB per CPU-second | cold MB/s | load ms | tokens | vs gpt-tokenizer cl100k |`
);
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.name} | ${fmt(r.mbPerSec)} [${fmt(r.minMbPerSec)}-${fmt(r.maxMbPerSec)}] | ${fmt(r.mTokensPerSec)} | ${fmt(r.mbPerCpuSecond)} | ${fmt(r.coldMbPerSec)} | ${fmt(r.loadMs, 0)} | ${r.tokens.toLocaleString('en-US')} | ${base ? `${fmt(ratio(r))}x` : '-'} |`
  );
}
const single = rows.find((r) => r.name.startsWith('tinyforge encode '));
const batch = rows.find((r) => r.name.startsWith('tinyforge encodeBatch ('));
const goals = base
  ? {
      single: { ratio: ratio(single), goal: GOAL.singleVsGptTokenizer, met: ratio(single) >= GOAL.singleVsGptTokenizer },
      batch: { ratio: ratio(batch), goal: GOAL.batchVsGptTokenizer, met: ratio(batch) >= GOAL.batchVsGptTokenizer },
    }
  : null;
if (goals) {
  console.log(
    `\ngoal single-thread >= ${GOAL.singleVsGptTokenizer}x gpt-tokenizer: ${fmt(goals.single.ratio)}x ${goals.single.met ? 'met' : 'NOT met'}`
  );
  console.log(
    `goal encodeBatch >= ${GOAL.batchVsGptTokenizer}x gpt-tokenizer: ${fmt(goals.batch.ratio)}x ${goals.batch.met ? 'met' : 'NOT met'}`
  );
}

const cpu = os.cpus()[0]?.model ?? 'unknown';
const date = new Date().toISOString().slice(0, 10);
const out = {
  suite: 'tokenizer',
  date: new Date().toISOString(),
  machine: {
    cpu,
    cores: os.availableParallelism(),
    node: process.version,
    platform: `${os.platform()}-${os.arch()}`,
    loadAverageAtEnd: os.loadavg(),
  },
  corpus: { bytes: corpus.totalBytes, files: corpus.files, chunks: corpus.chunks.length, sha1: corpus.sha1 },
  ourTokenizer: ourSource,
  passes: PASSES,
  rows,
  skipped: skips,
  baseline: base?.name ?? null,
  goals,
};
mkdirSync(path.join(ROOT, 'benches/results'), { recursive: true });
const file = path.join(ROOT, `benches/results/tokenizer-${date}.json`);
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
console.log(`\nwrote ${path.relative(ROOT, file)}`);
