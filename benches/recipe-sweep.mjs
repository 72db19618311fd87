#!/usr/bin/env node
// The sweep behind `train`'s default recipe (issue 11): for each setting, `foremforge train` on a
// training set, then `foremforge eval` of the run on that set's held-out rewordings (fact recall
// through the greedy generator), with the general-text perplexity of the tuned model against its
// base (`foremforge eval --general`: the shipped held-out prose, test/fixtures/heldout/prose.txt,
// paragraphs far from any training domain). A "base" row trains 1 step at lr 1e-12 so the adapter
// stays zero: its eval loss is the untuned model's.
//
//   node benches/recipe-sweep.mjs [--only id,id] [--force] [--render]
//
// Results accumulate in benches/results/recipe-sweep.json (one entry per run id, kept across
// invocations: a rerun skips ids already measured unless --force) and are rendered to
// benches/results/recipe-sweep.md. Needs `npm run build` and the SmolLM2 GGUF
// (TINYFORGE_SMOLLM2_GGUF, or the cache `foremforge pull --format gguf` fills).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist/cli/index.js');
const RESULTS = path.join(ROOT, 'benches/results/recipe-sweep.json');
const TABLE = path.join(ROOT, 'benches/results/recipe-sweep.md');
const WORK = path.join(os.tmpdir(), 'tinyforge-recipe-sweep');

const GGUF =
  process.env.TINYFORGE_SMOLLM2_GGUF ??
  path.join(os.homedir(), '.cache/tinyforge/models/smollm2-135m-instruct/gguf/SmolLM2-135M-Instruct.Q4_1.gguf');

/** Training set → its held-out rewordings (with `_key`). */
const DATASETS = {
  facts: { train: 'examples/facts/facts.jsonl', eval: 'examples/facts/facts.eval.jsonl' },
  'facts-aug3': { train: 'benches/recipe-sweep/facts.aug3.jsonl', eval: 'examples/facts/facts.eval.jsonl' },
  'facts-aug6': { train: 'benches/recipe-sweep/facts.aug6.jsonl', eval: 'examples/facts/facts.eval.jsonl' },
  qna: { train: 'examples/sample_qna.jsonl', eval: 'examples/sample_qna.eval.jsonl' },
};

const ALL7 = 'q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj';
const QKVO = 'q_proj,k_proj,v_proj,o_proj';

/** One run: a dataset and the train flags that differ from the trainer's built-in defaults. */
const RUNS = [
  { id: 'facts/base', data: 'facts', flags: ['--max-steps', '1', '--lr', '1e-12'], note: 'untuned (1 step at lr 1e-12)' },
  {
    id: 'facts/old-defaults-nosplit',
    data: 'facts',
    flags: ['--lora-r', '8', '--lora-alpha', '16', '--target-modules', QKVO, '--lr', '2e-4', '--epochs', '3'],
  },
  {
    id: 'facts/all7-r16-lr2e-3-ep8',
    data: 'facts',
    flags: ['--lora-r', '16', '--lora-alpha', '32', '--target-modules', ALL7, '--lr', '2e-3', '--epochs', '8'],
  },
  {
    id: 'facts/qkvo-r16-lr2e-3-ep8',
    data: 'facts',
    flags: ['--lora-r', '16', '--lora-alpha', '32', '--target-modules', QKVO, '--lr', '2e-3', '--epochs', '8'],
  },
  {
    id: 'facts/qkvo-r16-lr2e-3-ep12',
    data: 'facts',
    flags: ['--lora-r', '16', '--lora-alpha', '32', '--target-modules', QKVO, '--lr', '2e-3', '--epochs', '12'],
  },
  {
    id: 'facts/all7-r16-lr1e-3-ep8',
    data: 'facts',
    flags: ['--lora-r', '16', '--lora-alpha', '32', '--target-modules', ALL7, '--lr', '1e-3', '--epochs', '8'],
  },
  {
    id: 'facts/all7-r16-lr4e-3-ep8',
    data: 'facts',
    flags: ['--lora-r', '16', '--lora-alpha', '32', '--target-modules', ALL7, '--lr', '4e-3', '--epochs', '8'],
  },
  {
    id: 'facts-aug3/all7-r16-lr2e-3-ep4',
    data: 'facts-aug3',
    flags: ['--lora-r', '16', '--lora-alpha', '32', '--target-modules', ALL7, '--lr', '2e-3', '--epochs', '4'],
  },
  {
    id: 'facts-aug3/all7-r16-lr2e-3-ep6',
    data: 'facts-aug3',
    flags: ['--lora-r', '16', '--lora-alpha', '32', '--target-modules', ALL7, '--lr', '2e-3', '--epochs', '6'],
  },
  {
    id: 'facts-aug6/all7-r16-lr2e-3-ep3',
    data: 'facts-aug6',
    flags: ['--lora-r', '16', '--lora-alpha', '32', '--target-modules', ALL7, '--lr', '2e-3', '--epochs', '3'],
  },
  {
    // Measured with the first rehearsal: 30 passages the base model wrote (temperature 1), trained
    // every epoch. `--rehearsal` now trains shipped text once per run (the -once rows below).
    id: 'facts/all7-r16-lr2e-3-ep8-reh30',
    data: 'facts',
    flags: ['--lora-r', '16', '--lora-alpha', '32', '--target-modules', ALL7, '--lr', '2e-3', '--epochs', '8', '--rehearsal', '30'],
    note: 'model-written passages, every epoch (first rehearsal; not what --rehearsal does now)',
  },
  {
    id: 'facts/mlp-r16-lr2e-3-ep8',
    data: 'facts',
    flags: ['--lora-r', '16', '--lora-alpha', '32', '--target-modules', 'gate_proj,up_proj,down_proj', '--lr', '2e-3', '--epochs', '8'],
  },
  {
    // The shipped passages seen once: the records written 8 times, one pass (ts/dataset/rehearsal.ts).
    id: 'facts/all7-r16-lr2e-3-ep8-reh30once',
    data: 'facts',
    flags: ['--lora-r', '16', '--lora-alpha', '32', '--target-modules', ALL7, '--lr', '2e-3', '--epochs', '8', '--rehearsal', '30'],
    note: 'shipped general text, each passage once',
  },
  {
    id: 'facts/all7-r16-lr3e-3-ep8-reh30once',
    data: 'facts',
    flags: ['--lora-r', '16', '--lora-alpha', '32', '--target-modules', ALL7, '--lr', '3e-3', '--epochs', '8', '--rehearsal', '30'],
    note: 'shipped general text, each passage once',
  },
  {
    id: 'facts/all7-r16-lr2e-3-ep10-reh60once',
    data: 'facts',
    flags: ['--lora-r', '16', '--lora-alpha', '32', '--target-modules', ALL7, '--lr', '2e-3', '--epochs', '10', '--rehearsal', '60'],
    note: 'shipped general text, each passage once',
  },
  {
    id: 'facts-aug3/all7-r16-lr2e-3-ep4-reh30',
    data: 'facts-aug3',
    flags: ['--lora-r', '16', '--lora-alpha', '32', '--target-modules', ALL7, '--lr', '2e-3', '--epochs', '4', '--rehearsal', '30'],
  },
  {
    id: 'facts/all7-r16-lr2e-3-ep6',
    data: 'facts',
    flags: ['--lora-r', '16', '--lora-alpha', '32', '--target-modules', ALL7, '--lr', '2e-3', '--epochs', '6'],
  },
  {
    id: 'facts/all7-r16-lr2e-3-ep12-reh30once',
    data: 'facts',
    flags: ['--lora-r', '16', '--lora-alpha', '32', '--target-modules', ALL7, '--lr', '2e-3', '--epochs', '12', '--rehearsal', '30'],
    note: 'shipped general text, each passage once',
  },
  {
    id: 'facts/all7-r16-lr2e-3-ep8-reh15once',
    data: 'facts',
    flags: ['--lora-r', '16', '--lora-alpha', '32', '--target-modules', ALL7, '--lr', '2e-3', '--epochs', '8', '--rehearsal', '15'],
    note: 'shipped general text, each passage once',
  },
  {
    id: 'facts/all7-r16-lr2e-3-ep12-reh60once',
    data: 'facts',
    flags: ['--lora-r', '16', '--lora-alpha', '32', '--target-modules', ALL7, '--lr', '2e-3', '--epochs', '12', '--rehearsal', '60'],
    note: 'shipped general text once, passages in file order',
  },
  {
    id: 'facts/all7-r16-lr2e-3-ep10-reh30once',
    data: 'facts',
    flags: ['--lora-r', '16', '--lora-alpha', '32', '--target-modules', ALL7, '--lr', '2e-3', '--epochs', '10', '--rehearsal', '30'],
    note: 'shipped general text once, passages in file order',
  },
  { id: 'facts/recipe', data: 'facts', flags: [], note: 'train with no flags (the data-driven recipe)' },
  { id: 'qna/base', data: 'qna', flags: ['--max-steps', '1', '--lr', '1e-12'], note: 'untuned (1 step at lr 1e-12)' },
  {
    id: 'qna/all7-r16-lr2e-3-ep3',
    data: 'qna',
    flags: ['--lora-r', '16', '--lora-alpha', '32', '--target-modules', ALL7, '--lr', '2e-3', '--epochs', '3'],
  },
  { id: 'qna/recipe', data: 'qna', flags: [] },
];

function cli(args) {
  const started = performance.now();
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`foremforge ${args.join(' ')} failed (${r.status}):\n${r.stderr.slice(-2000)}`);
  return { out: r.stdout, err: r.stderr, wall: (performance.now() - started) / 1000 };
}

function load() {
  return existsSync(RESULTS) ? JSON.parse(readFileSync(RESULTS, 'utf8')) : { cpu: '', runs: {} };
}

/** Re-reads the file and merges, so two sweeps running side by side keep each other's runs. */
function save(results, id) {
  mkdirSync(path.dirname(RESULTS), { recursive: true });
  if (id !== undefined) {
    const entry = results.runs[id];
    results = { ...load(), cpu: results.cpu };
    results.runs[id] = entry;
  }
  const tmp = `${RESULTS}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(results, null, 2)}\n`);
  renameSync(tmp, RESULTS);
  writeFileSync(TABLE, render(results));
}

function render(results) {
  const head =
    '| run | records | steps | train s | s/step | loss first → last | general ppl (Δ vs base) | fact recall | token F1 |\n' +
    '| --- | ------- | ----- | ------- | ------ | ----------------- | ----------------------- | ----------- | -------- |\n';
  const rows = Object.entries(results.runs).map(([id, r]) => {
    // Against the run's own base as eval scored it (rows that recorded it), else the set's base row.
    const base = r.generalPplBase ?? results.runs[`${id.split('/')[0].replace(/-aug\d+$/, '')}/base`]?.generalPpl;
    const delta = base && r.generalPpl && id !== `${id.split('/')[0]}/base` ? ` (${((r.generalPpl / base - 1) * 100).toFixed(1)}%)` : '';
    return (
      `| ${id}${r.note ? ` — ${r.note}` : ''} | ${r.records} | ${r.steps} | ${r.trainSeconds.toFixed(0)} | ${(r.trainSeconds / Math.max(1, r.steps)).toFixed(2)} | ` +
      `${r.lossFirst?.toFixed(2) ?? '?'} → ${r.lossLast?.toFixed(3) ?? '?'} | ${r.generalPpl?.toFixed(2) ?? '-'}${delta} | ` +
      `${r.keyed ? `${(100 * r.factRecall).toFixed(1)}% (${r.recalled}/${r.keyed})` : '- (no keys)'} | ${(100 * r.f1).toFixed(1)}% |`
    );
  });
  return `# Recipe sweep (issue 11)\n\nCPU: ${results.cpu}. Generated by benches/recipe-sweep.mjs; raw numbers in recipe-sweep.json.\n\n${head}${rows.join('\n')}\n`;
}

const argv = process.argv.slice(2);
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1].split(',') : undefined;
const force = argv.includes('--force');
const results = load();
if (argv.includes('--render')) {
  // Re-renders the table from the JSON (after a change to the table's columns); runs nothing.
  writeFileSync(TABLE, render(results));
  process.exit(0);
}
results.cpu = `${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores`;
mkdirSync(WORK, { recursive: true });

for (const run of RUNS) {
  if (only && !only.includes(run.id)) continue;
  if (!only && results.runs[run.id] && !force) continue;
  const ds = DATASETS[run.data];
  if (!existsSync(path.join(ROOT, ds.train))) {
    console.log(`skip ${run.id}: ${ds.train} not present`);
    continue;
  }
  const out = path.join(WORK, run.id.replace(/\//g, '__'));
  rmSync(out, { recursive: true, force: true });
  console.log(`run ${run.id} (load ${os.loadavg()[0].toFixed(1)})`);
  // Runs that set their flags take no rewording or rehearsal from the recipe unless they ask for it.
  let flags = run.flags.length > 0 && !run.flags.includes('--augment') ? [...run.flags, '--augment', '0'] : run.flags;
  if (run.flags.length > 0 && !run.flags.includes('--rehearsal')) flags = [...flags, '--rehearsal', '0'];
  const train = cli(['train', '--data', ds.train, '--out', out, '--base', GGUF, '--json', ...flags]);
  const t = JSON.parse(train.out);
  const manifest = JSON.parse(readFileSync(path.join(out, 'tinyforge.json'), 'utf8'));
  const ev = JSON.parse(cli(['eval', '--model', out, '--data', ds.eval, '--general', '--json']).out);
  const s = ev.models[0];
  results.runs[run.id] = {
    note: run.note,
    flags: run.flags,
    records: t.trainExamples,
    steps: t.steps,
    trainSeconds: t.seconds,
    // The whole train command: model loads, rewording (when the recipe augments), the general-text score.
    wallSeconds: train.wall,
    tokensPerSecond: t.tokensPerSecond,
    lossFirst: t.history[0]?.loss,
    lossLast: t.finalLoss,
    generalLoss: ev.general.tuned.loss,
    generalPpl: ev.general.tuned.perplexity,
    generalPplBase: ev.general.base.perplexity,
    recipe: manifest.recipe ?? null,
    hyperparameters: manifest.hyperparameters ?? null,
    factRecall: s.factRecall,
    recalled: s.recalled,
    keyed: s.keyed,
    f1: s.f1,
    loadAvg1m: os.loadavg()[0],
    at: new Date().toISOString(),
  };
  save(results, run.id);
  console.log(
    `  ${t.steps} steps ${t.seconds.toFixed(0)} s, general ppl ${ev.general.tuned.perplexity.toFixed(2)} (base ${ev.general.base.perplexity.toFixed(2)}), recall ${s.recalled}/${s.keyed}`
  );
}
