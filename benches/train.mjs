#!/usr/bin/env node
// LoRA training throughput: `npm run bench -- train` (or `node benches/train.mjs`).
// LoRA r=8, alpha 16, dropout 0 on q,k,v,o of SmolLM2-135M-Instruct (the real Q4_1 GGUF, which
// transformers dequantizes too, so both sides start from the same weights), sequence length 256,
// batch 4, AdamW (wd 0.01), lr 1e-3 with 5% warmup + cosine, grad-norm clip 1, 2 threads.
// Contenders, each in its own process so peak RSS (VmHWM) is its alone:
//   - ours: the native `train()` binding (RAYON_NUM_THREADS=2), once per precision in
//     BENCH_TRAIN_OURS (default `auto,fp32`: auto is bf16 on AVX512_BF16 CPUs, then fp32 too);
//   - HF PEFT + PyTorch fp32, with torch.autocast('cpu', bfloat16), and both again under
//     torch.compile (torch.set_num_threads(2)), benches/anchors/peft_train.py; BENCH_TRAIN_TORCH
//     picks them (default `fp32,bf16,fp32-compile,bf16-compile`).
// Each row gives the steady-state tokens/s and the wall time of a whole JOB_STEPS-step job
// (process start-up, model load, compilation, every step and the eval): measured when the run
// has JOB_STEPS steps, otherwise start-up + the steps run + the missing ones at the measured mean.
// Data: multi-turn chats built from examples/sample_qna.jsonl (eval: sample_qna.eval.jsonl), each
// longer than 256 tokens so every record is cut to exactly 256 and no batch has padding. Our
// tokenizer and chat template turn them into ids + labels (prompt tokens unlabelled) once; the
// counts are checked against our trainer's dry run, and PyTorch trains on those exact sequences
// (each side shuffles the batch order with its own generator). Both run WARMUP + MEASURED + 1
// steps; tokens/s = tokens of the MEASURED steps / their time (the last step is left out because
// ours evaluates inside it). Final loss = mean of the last 5 steps; eval loss after the run on
// the same held-out sequences. Results: benches/results/train-<date>.json (BENCH_TRAIN_OUT=file
// writes elsewhere, for reduced check runs).
// Python: TINYFORGE_BENCH_PYTHON=/path/to/python reuses an interpreter that has torch, transformers,
// peft and gguf; otherwise they are installed from PyPI into ~/.cache/tinyforge/bench-venv
// (benches/anchors/train-requirements.txt). If that fails the PyTorch rows print `skip:`.
// Needs `npm run build:native`. Slow: several minutes per contender.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ANCHORS = path.join(ROOT, 'benches/anchors');
const WARMUP = Number(process.env.BENCH_TRAIN_WARMUP ?? 3);
const MEASURED = Number(process.env.BENCH_TRAIN_STEPS ?? 30);
const STEPS = WARMUP + MEASURED + 1;
const JOB_STEPS = 50;
const list = (v, d) =>
  (v ?? d)
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
const OURS_PRECISIONS = list(process.env.BENCH_TRAIN_OURS, 'auto,fp32');
const TORCH_MODES = list(process.env.BENCH_TRAIN_TORCH, 'fp32,bf16,fp32-compile,bf16-compile');

/** The CPU's model name and the SIMD flags that decide which kernels run. */
function cpuInfo() {
  let text = '';
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    /* not Linux */
  }
  const model = /model name\s*:\s*(.*)/.exec(text)?.[1] ?? os.cpus()[0]?.model;
  const flags = new Set((/flags\s*:\s*(.*)/.exec(text)?.[1] ?? '').split(' '));
  const wanted = ['avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vnni', 'avx512_bf16', 'avx512_fp16', 'amx_bf16', 'amx_tile'];
  return { model, flags: wanted.filter((f) => flags.has(f)) };
}
const HP = {
  seqLen: 256,
  batchSize: 4,
  steps: STEPS,
  lr: 1e-3,
  warmupRatio: 0.05,
  weightDecay: 0.01,
  maxGradNorm: 1,
  loraR: 8,
  loraAlpha: 16,
  loraDropout: 0,
  targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
  seed: 42,
  threads: 2,
};
HP.warmupSteps = Math.round(STEPS * HP.warmupRatio); // as crates/train/src/trainer.rs `schedule`
const EVAL_RECORDS = 8;
const GOAL = { vsPytorchBest: 1.0, stretch: 1.5, lossWithin: 0.05 };
const { Tokenizer, train } = createRequire(path.join(ROOT, 'package.json'))('@tinyforge/native');
const loadavg = () => os.loadavg().map((x) => +x.toFixed(2));
const mb = (kb) => +(kb / 1024).toFixed(0);

function smollm2Gguf() {
  const cache = process.env.TINYFORGE_CACHE ?? path.join(os.homedir(), '.cache', 'tinyforge');
  const found = [process.env.TINYFORGE_SMOLLM2_GGUF, '/tmp/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf'];
  const walk = (dir, depth) => {
    let names = [];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names.sort()) {
      if (/smollm2.*\.gguf$/i.test(n)) found.push(path.join(dir, n));
      else if (depth > 0 && !n.includes('.')) walk(path.join(dir, n), depth - 1);
    }
  };
  walk(cache, 3);
  return found.find((p) => p && existsSync(p));
}

// ---- data ---------------------------------------------------------------------------------------
let rngState = 0x2545f491;
const rand = () => {
  rngState ^= rngState << 13;
  rngState ^= rngState >>> 17;
  rngState ^= rngState << 5;
  return (rngState >>> 0) / 4294967296;
};
const shuffled = (xs) => {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
};

/** Our trainer's labelling (crates/train/src/data.rs `encode_chat`): tokens inside assistant turns. */
function encodeChat(tok, messages) {
  const render = (msgs, gen) => tok.applyChatTemplate(msgs, { addGenerationPrompt: gen });
  const full = render(messages, false);
  const spans = [];
  messages.forEach((m, k) => {
    if (m.role === 'assistant') spans.push([render(messages.slice(0, k), true).length, render(messages.slice(0, k + 1), false).length]);
  });
  const enc = tok.encodeWithOffsets(full, { addSpecialTokens: false });
  return { ids: Array.from(enc.ids), labels: enc.offsets.map(([s]) => spans.some(([a, b]) => s >= a && s < b)) };
}

/** `count` chats of random Q/A pairs, each longer than seqLen tokens, and their truncated encodings. */
function makeRecords(tok, pairs, count) {
  const records = [];
  const encoded = [];
  for (let r = 0; r < count; r++) {
    const messages = [];
    let enc;
    for (let pool = shuffled(pairs); ; pool = pool.length ? pool : shuffled(pairs)) {
      const { input, output } = pool.shift();
      messages.push({ role: 'user', content: input }, { role: 'assistant', content: output });
      enc = encodeChat(tok, messages);
      if (enc.ids.length > HP.seqLen + 16) break;
    }
    records.push({ messages });
    encoded.push({ ids: enc.ids.slice(0, HP.seqLen), labels: enc.labels.slice(0, HP.seqLen) });
  }
  return { records, encoded };
}

const readPairs = (file) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
const labelCount = (e) => e.labels.slice(1).filter(Boolean).length;

// ---- contenders ---------------------------------------------------------------------------------
const OURS_CHILD = `
  import { readFileSync, writeFileSync } from 'node:fs';
  import { createRequire } from 'node:module';
  const [root, optsFile, outFile] = process.argv.slice(1);
  const { train } = createRequire(root + '/package.json')('@tinyforge/native');
  const events = [];
  // CPU seconds (all threads) of this process: with other load on the machine, tokens per CPU
  // second compare engines where wall-clock tokens/s cannot.
  const cpu = () => { const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) / 100; };
  const t0 = performance.now();
  const res = await train(JSON.parse(readFileSync(optsFile, 'utf8')), (p) => {
    events.push({ step: p.step, elapsed: p.elapsedSeconds, cpu: cpu(), loss: p.loss, lr: p.lr });
    process.stdout.write('  ours step ' + p.step + '/' + p.totalSteps + ': loss ' + p.loss.toFixed(4) + ', ' + p.tokensPerSecond.toFixed(1) + ' tok/s (running mean)\\n');
  });
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (f) => Number(new RegExp(f + ':\\\\s+(\\\\d+)').exec(status)?.[1] ?? 0);
  writeFileSync(outFile, JSON.stringify({ events, wallSeconds: (performance.now() - t0) / 1000, evalLoss: res.evalLoss,
    trainSeconds: res.seconds, history: res.history, vmHwmKb: kb('VmHWM'), vmRssKb: kb('VmRSS') }));
`;

function runOurs(dir, gguf, trainFile, evalFile, precision) {
  const opts = {
    base: gguf,
    data: trainFile,
    evalData: evalFile,
    out: path.join(dir, `run-${precision}`),
    maxSteps: STEPS,
    lr: HP.lr,
    precision,
    batchSize: HP.batchSize,
    gradAccum: 1,
    loraR: HP.loraR,
    loraAlpha: HP.loraAlpha,
    loraDropout: HP.loraDropout,
    targetModules: HP.targetModules,
    maxSeqLen: HP.seqLen,
    seed: HP.seed,
    warmupRatio: HP.warmupRatio,
    weightDecay: HP.weightDecay,
    maxGradNorm: HP.maxGradNorm,
    evalEvery: 0,
    checkpointEvery: 0,
  };
  const optsFile = path.join(dir, `ours-${precision}-options.json`);
  const outFile = path.join(dir, `ours-${precision}-result.json`);
  writeFileSync(optsFile, JSON.stringify(opts));
  const env = { ...process.env, RAYON_NUM_THREADS: String(HP.threads) };
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', OURS_CHILD, ROOT, optsFile, outFile], {
    env,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`ours: child exited ${r.status ?? r.signal}`);
  const c = JSON.parse(readFileSync(outFile, 'utf8'));
  // Per-step seconds from the trainer's own clock (elapsed since its loop started).
  const at = new Map(c.events.map((e) => [e.step, e]));
  const steps = c.history.map((h) => ({
    step: h.step,
    loss: h.loss,
    tokens: HP.batchSize * HP.seqLen,
    seconds:
      at.has(h.step) && (h.step === 1 || at.has(h.step - 1))
        ? at.get(h.step).elapsed - (h.step === 1 ? 0 : at.get(h.step - 1).elapsed)
        : null,
    cpuSeconds: at.has(h.step) && at.has(h.step - 1) ? at.get(h.step).cpu - at.get(h.step - 1).cpu : null,
  }));
  const used = JSON.parse(readFileSync(path.join(opts.out, 'tinyforge.json'), 'utf8')).hyperparameters.fingerprint.precision;
  const processSeconds = (performance.now() - t0) / 1000;
  return {
    engine: `tinyforge (ours, ${precision})`,
    precision: used,
    compiled: false,
    steps,
    evalLoss: c.evalLoss,
    vmHwmKb: c.vmHwmKb,
    processSeconds,
    jobSeconds: processSeconds,
    threads: HP.threads,
  };
}

function pythonReady(py) {
  const r = spawnSync(
    py,
    ['-c', 'import torch, transformers, peft, gguf; print(torch.__version__, transformers.__version__, peft.__version__)'],
    { encoding: 'utf8' }
  );
  return r.status === 0 ? r.stdout.trim() : null;
}

/** The interpreter with torch + PEFT, installing them into a venv if needed; or why not. */
function findPython() {
  if (process.env.TINYFORGE_BENCH_PYTHON) {
    const py = process.env.TINYFORGE_BENCH_PYTHON;
    return pythonReady(py) ? { py } : { why: `TINYFORGE_BENCH_PYTHON=${py} cannot import torch, transformers, peft and gguf` };
  }
  const venv = path.join(os.homedir(), '.cache', 'tinyforge', 'bench-venv');
  const py = path.join(venv, 'bin', 'python');
  if (existsSync(py) && pythonReady(py)) return { py };
  console.log(`installing PyTorch + PEFT from PyPI into ${venv} (one time; torch is a large download) ...`);
  const mk = spawnSync('python3', ['-m', 'venv', venv], { stdio: 'inherit' });
  if (mk.status !== 0) return { why: `python3 -m venv ${venv} failed (is python3-venv installed?)` };
  const pip = spawnSync(py, ['-m', 'pip', 'install', '--disable-pip-version-check', '-r', path.join(ANCHORS, 'train-requirements.txt')], {
    stdio: 'inherit',
  });
  if (pip.status !== 0) return { why: `pip install -r benches/anchors/train-requirements.txt failed (exit ${pip.status})` };
  return pythonReady(py) ? { py } : { why: `${py} still cannot import torch, transformers, peft and gguf after pip install` };
}

function runPytorch(py, dir, mode) {
  const dtype = mode.replace('-compile', '');
  const outFile = path.join(dir, `pytorch-${mode}.json`);
  const env = {
    ...process.env,
    OMP_NUM_THREADS: String(HP.threads),
    MKL_NUM_THREADS: String(HP.threads),
    HF_HUB_OFFLINE: '1',
    TRANSFORMERS_VERBOSITY: 'error',
    TQDM_DISABLE: '1',
  };
  const t0 = performance.now();
  // BENCH_TRAIN_BF16_STEPS caps the bf16 row (4x slower than fp32 on CPUs without native bf16):
  // its tokens/s still compare; its final loss is then not from the whole schedule.
  const cap = dtype === 'bf16' ? process.env.BENCH_TRAIN_BF16_STEPS : undefined;
  const args = [path.join(ANCHORS, 'peft_train.py'), path.join(dir, 'batches.json'), mode, outFile, ...(cap ? [cap] : [])];
  const r = spawnSync(py, args, { env, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`peft_train.py ${mode} exited ${r.status ?? r.signal}`);
  const c = JSON.parse(readFileSync(outFile, 'utf8'));
  const label = `PyTorch + PEFT ${dtype === 'bf16' ? 'bf16 autocast' : 'fp32'}${c.compiled ? ', torch.compile' : ''}${cap ? ` (first ${c.steps.length} steps)` : ''}`;
  return { ...c, engine: label, processSeconds: (performance.now() - t0) / 1000 };
}

/** Tokens/s over the measured steps (WARMUP+1 .. WARMUP+MEASURED), median step, final and eval loss. */
function summarize(c) {
  const measured = c.steps.slice(WARMUP, WARMUP + MEASURED).filter((s) => s.seconds != null);
  const tokens = measured.reduce((n, s) => n + s.tokens, 0);
  const seconds = measured.reduce((n, s) => n + s.seconds, 0);
  const withCpu = measured.filter((s) => s.cpuSeconds != null);
  const cpuSeconds = withCpu.reduce((n, s) => n + s.cpuSeconds, 0);
  const perStep = measured.map((s) => s.tokens / s.seconds).sort((a, b) => a - b);
  const last5 = c.steps.slice(-5).map((s) => s.loss);
  // Whole-job wall time for JOB_STEPS steps: measured, or start-up + steps run + the rest at the mean.
  const ran = c.steps.filter((s) => s.seconds != null);
  const stepSeconds = ran.reduce((n, s) => n + s.seconds, 0);
  const jobSeconds =
    c.steps.length >= JOB_STEPS ? c.jobSeconds : c.jobSeconds + (JOB_STEPS - c.steps.length) * (seconds / Math.max(measured.length, 1));
  return {
    engine: c.engine,
    precision: c.precision,
    compiled: c.compiled,
    startupSeconds: +(c.jobSeconds - stepSeconds).toFixed(1),
    firstStepSeconds: +(c.steps[0].seconds ?? 0).toFixed(1),
    jobSeconds: +jobSeconds.toFixed(1),
    jobEstimated: c.steps.length < JOB_STEPS,
    tokensPerSec: +(tokens / seconds).toFixed(1),
    tokensPerCpuSec: withCpu.length ? +(withCpu.reduce((n, s) => n + s.tokens, 0) / cpuSeconds).toFixed(1) : null,
    medianStepTokensPerSec: +perStep[Math.floor(perStep.length / 2)].toFixed(1),
    measuredSteps: measured.length,
    measuredSeconds: +seconds.toFixed(1),
    peakRssMb: mb(c.vmHwmKb),
    finalLoss: +(last5.reduce((a, b) => a + b, 0) / last5.length).toFixed(4),
    firstLoss: +c.steps[0].loss.toFixed(4),
    evalLoss: c.evalLoss == null ? null : +c.evalLoss.toFixed(4),
    processSeconds: +c.processSeconds.toFixed(1),
    ...(c.versions ? { versions: c.versions } : {}),
    losses: c.steps.map((s) => +s.loss.toFixed(4)),
  };
}

// ---- report -------------------------------------------------------------------------------------
/** Prints the table and the goal lines; returns the goals (null without both sides). */
function report(rows) {
  const isOurs = (r) => r.engine.includes('ours');
  const ours = rows.filter(isOurs).sort((a, b) => b.tokensPerSec - a.tokensPerSec)[0];
  const best = rows.filter((r) => !isOurs(r)).sort((a, b) => b.tokensPerSec - a.tokensPerSec)[0];
  const fmt = (x, d = 1) => (x == null ? '-' : x.toFixed(d));
  console.log(
    `\n| engine | precision | tok/s (measured steps) | tok per CPU s | median step tok/s | first step s | ${JOB_STEPS}-step job s | peak RSS MB | first loss | final loss (last 5) | eval loss | vs PyTorch best |`
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const ratio = best ? `${fmt(r.tokensPerSec / best.tokensPerSec, 2)}x` : '-';
    const job = r.jobSeconds == null ? '-' : `${fmt(r.jobSeconds, 0)}${r.jobEstimated ? ' (est.)' : ''}`;
    console.log(
      `| ${r.engine} | ${r.precision ?? '-'} | ${fmt(r.tokensPerSec)} | ${fmt(r.tokensPerCpuSec)} | ${fmt(r.medianStepTokensPerSec)} | ${fmt(r.firstStepSeconds)} | ${job} | ${r.peakRssMb} | ${fmt(r.firstLoss, 3)} | ${fmt(r.finalLoss, 3)} | ${fmt(r.evalLoss, 3)} | ${ratio} |`
    );
  }
  let goals = null;
  if (ours && best) {
    const lossDiff = Math.abs(ours.finalLoss - best.finalLoss) / best.finalLoss;
    const evalDiff = ours.evalLoss != null && best.evalLoss != null ? Math.abs(ours.evalLoss - best.evalLoss) / best.evalLoss : null;
    goals = {
      baseline: best.engine,
      tokensPerSecRatio: +(ours.tokensPerSec / best.tokensPerSec).toFixed(2),
      peakRssRatio: +(ours.peakRssMb / best.peakRssMb).toFixed(2),
      finalLossRelDiff: +lossDiff.toFixed(4),
      evalLossRelDiff: evalDiff == null ? null : +evalDiff.toFixed(4),
      speedMet: ours.tokensPerSec / best.tokensPerSec >= GOAL.vsPytorchBest,
      stretchMet: ours.tokensPerSec / best.tokensPerSec >= GOAL.stretch,
      lossMet: lossDiff <= GOAL.lossWithin,
    };
    console.log(
      `\nours / ${best.engine}: ${goals.tokensPerSecRatio}x tokens/s (goal >= ${GOAL.vsPytorchBest}x: ${goals.speedMet ? 'met' : 'NOT met'}; stretch ${GOAL.stretch}x: ${goals.stretchMet ? 'met' : 'not met'}), ${goals.peakRssRatio}x peak RSS`
    );
    console.log(
      `final loss ${ours.finalLoss} vs ${best.finalLoss}: ${(lossDiff * 100).toFixed(1)}% apart (goal <= ${GOAL.lossWithin * 100}%: ${goals.lossMet ? 'met' : 'NOT met'}); eval loss ${ours.evalLoss} vs ${best.evalLoss}`
    );
  }
  return goals;
}

// ---- main ---------------------------------------------------------------------------------------
// `--report FILE`: re-print a results file's table and recompute its goals (writes them back).
if (process.argv[2] === '--report') {
  const file = process.argv[3];
  const saved = JSON.parse(readFileSync(file, 'utf8'));
  saved.goals = report(saved.rows);
  writeFileSync(file, `${JSON.stringify(saved, null, 2)}\n`);
  process.exit(0);
}
const gguf = smollm2Gguf();
if (!gguf) {
  console.log(
    'skip: train bench: no SmolLM2-135M-Instruct GGUF (set TINYFORGE_SMOLLM2_GGUF or run `foremforge pull smollm2-135m-instruct --format gguf`)'
  );
  process.exit(0);
}
const dir = mkdtempSync(path.join(os.tmpdir(), 'tinyforge-bench-train-'));
try {
  const tok = Tokenizer.fromGguf(gguf);
  const trainSet = makeRecords(tok, readPairs(path.join(ROOT, 'examples/sample_qna.jsonl')), STEPS * HP.batchSize);
  const evalSet = makeRecords(tok, readPairs(path.join(ROOT, 'examples/sample_qna.eval.jsonl')), EVAL_RECORDS);
  const trainFile = path.join(dir, 'train.jsonl');
  const evalFile = path.join(dir, 'eval.jsonl');
  writeFileSync(trainFile, `${trainSet.records.map((r) => JSON.stringify(r)).join('\n')}\n`);
  writeFileSync(evalFile, `${evalSet.records.map((r) => JSON.stringify(r)).join('\n')}\n`);

  // Our trainer's own count of the same files must match the sequences PyTorch will get.
  const dry = await train({
    base: gguf,
    data: trainFile,
    evalData: evalFile,
    out: path.join(dir, 'dry'),
    maxSeqLen: HP.seqLen,
    dryRun: true,
  });
  const want = {
    records: trainSet.encoded.length,
    tokens: STEPS * HP.batchSize * HP.seqLen,
    labelTokens: trainSet.encoded.reduce((n, e) => n + labelCount(e), 0),
  };
  const got = { records: dry.data.valid, tokens: dry.data.tokens, labelTokens: dry.data.labelTokens };
  if (
    JSON.stringify(want) !== JSON.stringify(got) ||
    dry.data.truncated !== want.records ||
    dry.evalData.labelTokens !== evalSet.encoded.reduce((n, e) => n + labelCount(e), 0)
  ) {
    throw new Error(
      `our trainer tokenizes the bench data differently from the bench: bench ${JSON.stringify(want)}, trainer ${JSON.stringify(got)}`
    );
  }
  writeFileSync(
    path.join(dir, 'batches.json'),
    JSON.stringify({ gguf, hyperparameters: HP, train: trainSet.encoded, eval: evalSet.encoded })
  );
  console.log(
    `data: ${want.records} chats cut to ${HP.seqLen} tokens (${want.labelTokens} labelled of ${want.tokens}), ${EVAL_RECORDS} eval chats; ${STEPS} steps of batch ${HP.batchSize} (${WARMUP} warm-up, ${MEASURED} measured, 1 final with eval)`
  );
  const cpu = cpuInfo();
  console.log(`cpu: ${cpu.model}, ${os.availableParallelism()} threads; flags: ${cpu.flags.join(' ')}`);
  console.log(`model: ${gguf}; load average ${loadavg().join(' ')} (other work on this machine slows every row)`);

  const rows = [];
  const skipped = [];
  const load = {};
  const run = (name, fn) => {
    const before = loadavg();
    console.log(`\nrunning ${name} ...`);
    try {
      rows.push(summarize(fn()));
    } catch (err) {
      skipped.push({ name, reason: err.message });
      console.log(`skip: ${name}: ${err.message}`);
    }
    load[name] = { before, after: loadavg() };
  };
  for (const p of OURS_PRECISIONS) run(`ours ${p}`, () => runOurs(dir, gguf, trainFile, evalFile, p));
  // BENCH_TRAIN_ONLY=ours: our row alone (while iterating on speed; ratios need the full run).
  const python = process.env.BENCH_TRAIN_ONLY === 'ours' ? { why: 'BENCH_TRAIN_ONLY=ours' } : findPython();
  if (python.py) {
    console.log(`python: ${python.py} (${pythonReady(python.py)})`);
    for (const mode of TORCH_MODES) run(`pytorch ${mode}`, () => runPytorch(python.py, dir, mode));
  } else {
    skipped.push({ name: 'PyTorch + PEFT', reason: python.why });
    console.log(`skipped: PyTorch + PEFT rows: ${python.why}`);
  }

  const out = {
    suite: 'train',
    date: new Date().toISOString(),
    machine: {
      cpu: cpu.model,
      flags: cpu.flags,
      cores: os.availableParallelism(),
      memGb: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      loadAverage: load,
    },
    note: process.env.BENCH_NOTE ?? null,
    model: path.basename(gguf),
    hyperparameters: { ...HP, warmupMeasuredSteps: WARMUP, measuredSteps: MEASURED, evalRecords: EVAL_RECORDS },
    data: {
      trainRecords: want.records,
      tokensPerStep: HP.batchSize * HP.seqLen,
      labelTokens: want.labelTokens,
      source: 'examples/sample_qna.jsonl chats (eval: sample_qna.eval.jsonl)',
      sha256: Object.fromEntries(
        ['sample_qna.jsonl', 'sample_qna.eval.jsonl'].map((n) => [
          n,
          createHash('sha256')
            .update(readFileSync(path.join(ROOT, 'examples', n)))
            .digest('hex'),
        ])
      ),
    },
    rows,
    skipped,
    goals: report(rows),
  };
  mkdirSync(path.join(ROOT, 'benches/results'), { recursive: true });
  // BENCH_TRAIN_OUT: somewhere else (a reduced check run must not replace the day's results).
  const file = process.env.BENCH_TRAIN_OUT
    ? path.resolve(process.env.BENCH_TRAIN_OUT)
    : path.join(ROOT, `benches/results/train-${out.date.slice(0, 10)}.json`);
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(ROOT, file)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
