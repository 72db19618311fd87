// `foremforge train --data F --out D [--base M] ...`: LoRA (default) or full fine-tuning with a
// progress bar (loss, tokens/s, ETA), eval lines, a final summary and a loss curve in the
// terminal and as loss.svg in the run folder. `--dry-run` validates the data and prints token
// statistics and the step count. Ctrl-C stops at a step boundary and leaves a checkpoint that
// `--resume` continues.
import { Command, InvalidArgumentError } from 'commander';
import type { JsTrainResult } from '@tinyforge/native';
import { formatProblem } from '../../ts/dataset/validate.js';
import type { RunEval } from '../../ts/pipeline/eval-run.js';
import { sparkline } from '../../ts/pipeline/loss-curve.js';
import { formatRecipe } from '../../ts/pipeline/recipe-apply.js';
import { type TrainProgress, type TrainResult, type TrainRunOptions, runTraining } from '../../ts/pipeline/train.js';
import { registerRunFromFolder } from '../../ts/registry/index.js';
import { numberOption } from '../flags.js';

const int = (flag: string) => numberOption(flag, { integer: true, min: 0 });
const num = (flag: string) => numberOption(flag);

interface TrainFlags {
  data: string;
  out: string;
  base?: string;
  evalData?: string;
  epochs?: number;
  maxSteps?: number;
  lr?: number;
  batchSize?: number;
  gradAccum?: number;
  loraR?: number;
  loraAlpha?: number;
  loraDropout?: number;
  useRslora?: boolean;
  targetModules?: string;
  maxSeqLen?: number;
  evalSplit?: number;
  evalEvery?: number;
  checkpointEvery?: number;
  earlyStopping?: number;
  warmupRatio?: number;
  augment?: number;
  rehearsal?: number;
  recipe: boolean;
  seed?: number;
  resume?: boolean;
  useLora?: boolean;
  full?: boolean;
  dryRun?: boolean;
  precision?: string;
  skipInvalid?: boolean;
  json?: boolean;
}

const duration = (s: number): string => {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(1)}s`;
};

function progressLine(p: TrainProgress): string {
  const width = 24;
  const done = Math.round((p.step / Math.max(1, p.totalSteps)) * width);
  const bar = '█'.repeat(done) + '░'.repeat(width - done);
  return (
    `${bar} ${p.step}/${p.totalSteps} ep ${p.epoch.toFixed(2)} loss ${p.loss.toFixed(4)} lr ${p.lr.toExponential(1)} ` +
    `${Math.round(p.tokensPerSecond)} tok/s eta ${duration(p.etaSeconds)}`
  );
}

function printDryRun(r: TrainResult): void {
  const d = r.data;
  const lines = [
    `records: ${d.records} (valid ${d.valid}, invalid ${d.invalid}, truncated ${d.truncated}, dropped without response ${d.droppedNoLabels})`,
    `tokens: ${d.tokens} total, ${d.labelTokens} trained on (responses); length min ${d.minLen} / mean ${d.meanLen.toFixed(1)} / max ${d.maxLen}`,
    `split: ${r.trainExamples} train, ${r.evalExamples} eval`,
    `steps: ${r.stepsPerEpoch} per epoch, ${r.totalSteps} total`,
  ];
  // The trainer's rejected records and the data's warnings, merged in file order and printed as
  // `data validate` prints them: `file:line: field: reason [CODE]`.
  const found = [
    ...r.issues.map((i) => ({ file: i.file, line: i.line, text: `${i.file}:${i.line}: ${i.reason}` })),
    ...(r.warnings ?? []).map((w) => ({ file: w.file, line: w.line, text: formatProblem(w.file, w) })),
  ];
  const rank = new Map<string, number>();
  for (const f of found) if (!rank.has(f.file)) rank.set(f.file, rank.size);
  found.sort((x, y) => rank.get(x.file)! - rank.get(y.file)! || x.line - y.line);
  for (const f of found) lines.push(f.text);
  const more = (r.warningCount ?? 0) - (r.warnings?.length ?? 0);
  if (more > 0) lines.push(`... and ${more} more warnings (\`foremforge data validate\` lists them all)`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

function printSummary(r: JsTrainResult & { lossCurve?: string; eval?: RunEval }): void {
  const losses = r.history.map((h) => h.loss);
  const lines = [
    `trained ${r.steps}/${r.totalSteps} steps in ${duration(r.seconds)} (${Math.round(r.tokensPerSecond)} tok/s)` +
      (r.resumedFrom != null ? `, resumed from step ${r.resumedFrom}` : '') +
      (r.stoppedEarly ? ', stopped early' : ''),
    `loss: ${losses[0]?.toFixed(4) ?? '?'} → ${r.finalLoss?.toFixed(4) ?? '?'}  ${sparkline(losses)}`,
  ];
  if (r.evalLoss != null) lines.push(`eval loss ${r.evalLoss.toFixed(4)}, perplexity ${r.perplexity?.toFixed(2)}`);
  if (r.eval?.table !== undefined) lines.push('eval of the finished run on --eval-data (as `foremforge eval`):', r.eval.table);
  if (r.eval?.skipped !== undefined) lines.push(`answer eval skipped: ${r.eval.skipped}`);
  lines.push(`output: ${r.outputDir}`, `manifest: ${r.manifest}`);
  if (r.lossCurve) lines.push(`loss curve: ${r.lossCurve}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

export const trainCommand = new Command('train')
  .description('Fine-tune the base model on JSONL records with LoRA (default) or fully, writing a run folder.')
  .requiredOption('--data <file>', 'JSONL records: {"input","output"}, {"messages"} or {"text"} per line')
  .requiredOption('--out <dir>', 'run folder (adapter/, tinyforge.json, metrics.jsonl, checkpoints/, loss.svg)')
  .option('--base <model>', 'model folder, .gguf file or catalog name (default: smollm2-135m-instruct)')
  .option('--eval-data <file>', 'separate JSONL eval set (instead of --eval-split); also run through `foremforge eval` at the end')
  .option('--epochs <n>', 'passes over the data (default: the recipe)', int('--epochs'))
  .option('--max-steps <n>', 'optimizer steps (overrides --epochs)', int('--max-steps'))
  .option('--lr <rate>', 'peak learning rate (default: the recipe)', num('--lr'))
  .option('--batch-size <n>', 'records per micro-batch (default 4)', int('--batch-size'))
  .option('--grad-accum <n>', 'micro-batches per optimizer step (default 1)', int('--grad-accum'))
  .option('--lora-r <n>', 'LoRA rank (default: the recipe)', int('--lora-r'))
  .option('--lora-alpha <a>', 'LoRA alpha (default: the recipe)', num('--lora-alpha'))
  .option('--lora-dropout <p>', 'LoRA dropout (default 0.05)', num('--lora-dropout'))
  .option('--use-rslora', 'scale by alpha/sqrt(r) (rank-stabilized LoRA)')
  .option('--target-modules <list>', 'comma-separated: q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj (default: the recipe)')
  .option('--max-seq-len <n>', 'truncate longer records (default 512)', int('--max-seq-len'))
  .option('--eval-split <f>', 'fraction held out for eval (default: the recipe; none up to 500 records)', num('--eval-split'))
  .option('--warmup-ratio <f>', 'fraction of steps warming up the learning rate (default 0.05)', num('--warmup-ratio'))
  .option('--augment <n>', 'add N model-written rewordings of each question before training (default: the recipe)', int('--augment'))
  .option(
    '--rehearsal <n>',
    "train once alongside N of the 60 shipped general-English passages, to keep the base model's general text (default: the recipe; 0: off)",
    int('--rehearsal')
  )
  .option(
    '--no-recipe',
    "no data-driven recipe: unset hyperparameters take the trainer's fixed defaults (r 8, q/k/v/o, lr 2e-4, 3 epochs, split 0.1)"
  )
  .option('--eval-every <n>', 'evaluate every N steps (default: at the end)', int('--eval-every'))
  .option('--checkpoint-every <n>', 'checkpoint every N steps (default: only on Ctrl-C)', int('--checkpoint-every'))
  .option('--early-stopping <patience>', 'stop after N evaluations without improvement', int('--early-stopping'))
  .option('--seed <n>', 'random seed (default 42)', int('--seed'))
  .option('--resume', 'continue from the newest checkpoint in --out')
  .option('--use-lora', 'train a LoRA adapter (the default)')
  .option('--full', 'fine-tune every weight and write a full model folder')
  .option('--dry-run', 'validate the data, print token statistics and the step count; train nothing')
  .option('--skip-invalid', 'train without invalid records instead of stopping')
  .option('--precision <p>', 'frozen base weights in auto|fp32|bf16 (default auto: bf16 on AMD CPUs with AVX512_BF16)')
  .option('--json', 'print the result as JSON')
  .exitOverride()
  .action(async (flags: TrainFlags) => {
    if (flags.full && flags.useLora) throw new InvalidArgumentError('--full and --use-lora exclude each other');
    const controller = new AbortController();
    const onSigint = () => {
      process.stderr.write('\nstopping at the next step boundary (writing a checkpoint)...\n');
      controller.abort();
    };
    process.once('SIGINT', onSigint);
    const tty = process.stderr.isTTY === true;
    let lastLine = 0;
    const onProgress = (p: TrainProgress): void => {
      if (p.evalLoss != null) {
        process.stderr.write(
          `${tty ? '\r\x1b[K' : ''}eval @ step ${p.step}: loss ${p.evalLoss.toFixed(4)}, perplexity ${p.perplexity?.toFixed(2)}\n`
        );
      }
      if (tty) process.stderr.write(`\r\x1b[K${progressLine(p)}`);
      else if (p.step === p.totalSteps || Date.now() - lastLine > 2000) {
        lastLine = Date.now();
        process.stderr.write(`${progressLine(p)}\n`);
      }
    };
    const options: TrainRunOptions = {
      data: flags.data,
      out: flags.out,
      onProgress,
      signal: controller.signal,
      full: flags.full === true,
      resume: flags.resume === true,
      dryRun: flags.dryRun === true,
      skipInvalid: flags.skipInvalid === true,
      useRslora: flags.useRslora === true,
    };
    if (flags.base !== undefined) options.base = flags.base;
    if (flags.precision !== undefined) options.precision = flags.precision;
    if (flags.evalData !== undefined) options.evalData = flags.evalData;
    if (flags.targetModules !== undefined)
      options.targetModules = flags.targetModules
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    if (flags.earlyStopping !== undefined) options.earlyStoppingPatience = flags.earlyStopping;
    if (flags.augment !== undefined) options.augment = flags.augment;
    if (flags.rehearsal !== undefined) options.rehearsal = flags.rehearsal;
    if (!flags.recipe) options.recipe = false;
    // The recipe block goes before the progress bar; --json carries it in the result instead.
    if (!flags.json) options.onRecipe = (r) => process.stdout.write(`${formatRecipe(r)}\n`);
    options.onLog = (line) => process.stderr.write(`${line}\n`);
    const numeric = [
      'epochs',
      'maxSteps',
      'lr',
      'batchSize',
      'gradAccum',
      'loraR',
      'loraAlpha',
      'loraDropout',
      'maxSeqLen',
      'evalSplit',
      'warmupRatio',
      'evalEvery',
      'checkpointEvery',
      'seed',
    ] as const;
    for (const key of numeric) {
      const v = flags[key];
      if (v !== undefined) options[key] = v;
    }
    try {
      const result = await runTraining(options);
      if (tty) process.stderr.write('\n');
      // Every finished run is a registry row with its lineage (base + data hashes, hyperparameters).
      if (!result.dryRun) await registerRunFromFolder(result.runDir);
      if (flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
      else if (result.dryRun) printDryRun(result);
      else printSummary(result);
      if (result.dryRun && result.issues.length > 0 && !flags.skipInvalid) process.exitCode = 2;
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
  });
