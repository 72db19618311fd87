#!/usr/bin/env node
// Dataset validation throughput: `npm run bench -- data` (or `node benches/data.mjs`).
// Generates a ~1 GB JSONL file of {input, output} records (~1% exact duplicates, a few broken
// lines; BENCH_DATA_MB to change the size) in a temp folder, streaming, then
// validates it in a child process (so peak RSS is the validator's alone) and reports MB/s,
// records/s and peak RSS (VmHWM). As a reference row, the same child runs the plainest Node
// loop that could read the file: readline + JSON.parse, no checks, no duplicate detection.
// Goal (issue 4): >= 100 MB/s and < 200 MB RSS. Results go to benches/results/data-<date>.json.
// Needs `npm run build:ts` first (it runs the built dist/).
import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TARGET_MB = Number(process.env.BENCH_DATA_MB ?? 1024);
const GOAL = { mbPerSec: 100, peakRssMb: 200 };

// Deterministic English-like text: a seeded xorshift over a small vocabulary (with a few Latin-1
// words, and a CJK or emoji word about once per 2,000 words, so the UTF-8 decoder's slow paths are
// exercised without making every string two-byte); lengths vary so records range from ~100 bytes
// to ~3 KB (mean ~1.2 KB, like real instruction data).
const WORDS = (
  'invoice payment account plan price support error code version limit user team export import sync ' +
  'backup the a to of and in for on with is are was be this that it can will not your our their refund ' +
  'currency attachment reminder quantity customer supplier monthly annual trial discount upgrade download ' +
  'café naïve données résumé'
).split(' ');
const RARE = ['日本語', '🎉', 'Ελληνικά', 'добро'];
let state = 0x9e3779b9;
const rand = () => {
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 4294967296;
};
const sentence = (n) => {
  let s = '';
  for (let i = 0; i < n; i++) {
    const r = rand();
    s += (i ? ' ' : '') + (r < 0.0005 ? RARE[Math.floor(r * 8000)] : WORDS[Math.floor(rand() * WORDS.length)]);
  }
  return s;
};

async function generate(file, targetBytes) {
  const out = createWriteStream(file);
  let bytes = 0;
  let records = 0;
  const recent = [];
  while (bytes < targetBytes) {
    let buf = '';
    for (let i = 0; i < 2000; i++) {
      let line;
      const r = rand();
      if (r < 0.01 && recent.length)
        line = recent[Math.floor(rand() * recent.length)]; // ~1% exact duplicates
      else if (r < 0.0101)
        line = '{"input": "broken line", "output": '; // a few bad lines
      else
        line = JSON.stringify({
          input: `${sentence(8 + Math.floor(rand() * 40))}?`,
          output: `${sentence(20 + Math.floor(rand() * 300))}.`,
        });
      if (recent.length < 64) recent.push(line);
      else recent[Math.floor(rand() * 64)] = line;
      buf += `${line}\n`;
      records++;
    }
    bytes += Buffer.byteLength(buf);
    if (!out.write(buf)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return { bytes, records };
}

// The child: runs one reader over the file and prints {seconds, records, problems, vmHwmKb, maxRssKb}.
const CHILD = `
  import { readFileSync } from 'node:fs';
  const [mode, file, datasetUrl, workers] = process.argv.slice(1);
  const peak = () => Number(/VmHWM:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0);
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let records = 0, problems = 0;
  if (mode === 'validate') {
    const { validateFile } = await import(datasetUrl);
    const { summary } = await validateFile(file, { maxProblems: 1000, ...(workers === 'default' ? {} : { workers: Number(workers) }) });
    records = summary.records;
    problems = summary.errors + summary.warnings;
  } else {
    const { createReadStream } = await import('node:fs');
    const { createInterface } = await import('node:readline');
    for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
      if (!line) continue;
      records++;
      try { JSON.parse(line); } catch { problems++; }
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6; // all threads of the process
  console.log(JSON.stringify({ seconds, cpuSeconds, records, problems, vmHwmKb: peak(), maxRssKb: process.resourceUsage().maxRSS }));
`;

function runChild(mode, file, workers = 'default') {
  const datasetUrl = pathToFileURL(path.join(ROOT, 'dist/ts/dataset/index.js')).href;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, mode, file, datasetUrl, String(workers)], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`${mode} child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

async function main() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tinyforge-bench-data-'));
  const file = path.join(dir, 'data.jsonl');
  try {
    process.stderr.write(`generating ~${TARGET_MB} MB of JSONL in ${dir} ...\n`);
    const g0 = performance.now();
    const gen = await generate(file, TARGET_MB * 1024 * 1024);
    const genSeconds = (performance.now() - g0) / 1000;
    const bytes = statSync(file).size;
    const rows = [];
    const loadBefore = os.loadavg().map((x) => +x.toFixed(2));
    for (const [name, mode, workers] of [
      ['tinyforge validateFile (default: 2 worker threads)', 'validate', 'default'],
      ['tinyforge validateFile (workers: 0, one thread)', 'validate', 0],
      ['reference: readline + JSON.parse, one thread', 'readline'],
      ['tinyforge validateFile (default, 2nd run)', 'validate', 'default'],
    ]) {
      process.stderr.write(`running ${name} ...\n`);
      const c = runChild(mode, file, workers);
      rows.push({
        name,
        seconds: +c.seconds.toFixed(2),
        mbPerSec: +(bytes / 1e6 / c.seconds).toFixed(1),
        cpuSeconds: +c.cpuSeconds.toFixed(2),
        mbPerCpuSec: +(bytes / 1e6 / c.cpuSeconds).toFixed(1),
        recordsPerSec: Math.round(c.records / c.seconds),
        peakRssMb: +(c.vmHwmKb / 1024).toFixed(1),
        records: c.records,
        problems: c.problems,
      });
    }
    const best = rows.filter((r) => r.name.startsWith('tinyforge')).sort((a, b) => b.mbPerSec - a.mbPerSec)[0];
    const result = {
      suite: 'data',
      date: new Date().toISOString(),
      // Load average before and after: the machine may be shared; MB per CPU-second is the
      // number least disturbed by other processes.
      machine: {
        cpus: os.cpus().length,
        cpu: os.cpus()[0]?.model,
        memGb: Math.round(os.totalmem() / 2 ** 30),
        loadBefore,
        loadAfter: os.loadavg().map((x) => +x.toFixed(2)),
        node: process.version,
      },
      file: { bytes, records: gen.records, generateSeconds: +genSeconds.toFixed(1) },
      goal: GOAL,
      rows,
      met: {
        throughput: best.mbPerSec >= GOAL.mbPerSec,
        memory: rows.every((r) => !r.name.startsWith('tinyforge') || r.peakRssMb < GOAL.peakRssMb),
      },
    };
    mkdirSync(path.join(ROOT, 'benches/results'), { recursive: true });
    const out = path.join(ROOT, 'benches/results', `data-${result.date.slice(0, 10)}.json`);
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(
      `\ndata bench: ${(bytes / 1e6).toFixed(0)} MB, ${gen.records} records (${os.cpus().length} cpus, load avg before ${loadBefore.join(' ')}, after ${result.machine.loadAfter.join(' ')})`
    );
    console.table(
      rows.map(({ name, seconds, mbPerSec, recordsPerSec, mbPerCpuSec, peakRssMb }) => ({
        name,
        seconds,
        'MB/s': mbPerSec,
        'records/s': recordsPerSec,
        'MB/CPU-s': mbPerCpuSec,
        'peak RSS MB': peakRssMb,
      }))
    );
    console.log(
      `goal >= ${GOAL.mbPerSec} MB/s: ${result.met.throughput ? 'met' : 'NOT met'}; RSS < ${GOAL.peakRssMb} MB: ${result.met.memory ? 'met' : 'NOT met'}`
    );
    console.log(`written ${path.relative(ROOT, out)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
