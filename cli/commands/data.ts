// `foremforge data validate|stats|split|dedup`: the dataset tools over JSONL files.
import { Command } from 'commander';
import path from 'node:path';
import { loadConfig } from '../../ts/config/load.js';
import { augmentCommand } from './data-augment.js';
import { ForgeError } from '../../ts/errors.js';
import {
  type DatasetStats,
  type NativeTokenizer,
  datasetStats,
  dedupFile,
  formatProblem,
  loadTokenizerFor,
  splitFile,
  validateFile,
} from '../../ts/dataset/index.js';
import { numberOption } from '../flags.js';

const integer = (flag: string, min = 0) => numberOption(flag, { integer: true, min });

const printJson = (value: unknown) => process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

const validate = new Command('validate')
  .description(
    'Check every record: bad JSON, missing fields, wrong types, empty output, unknown roles, over-long records, duplicates, mixed schemas. Exit 0 = usable, 2 = errors.'
  )
  .argument('<file>', 'JSONL file')
  .option('--json', 'print {summary, problems} as JSON')
  .option('--max-chars <n>', 'longest record in characters', integer('--max-chars', 1), 65536)
  .option('--max-tokens <n>', 'longest record in tokens (needs --base)', integer('--max-tokens', 1))
  .option('--base <model>', 'base model for token counts: tokenizer.json, HF model folder, .gguf, or the name of a pulled model')
  .option('--strict', 'warnings (duplicates, unknown fields, mixed schemas, blank prompts) also make the exit code 2')
  .option('--workers <n>', 'worker threads (default: 2 for files of 16 MiB or more; 0 = one thread)', integer('--workers'))
  .action(
    async (
      file: string,
      flags: { json?: boolean; maxChars: number; maxTokens?: number; base?: string; strict?: boolean; workers?: number }
    ) => {
      if (flags.maxTokens !== undefined && !flags.base) {
        throw new ForgeError('INVALID_ARGUMENT', '--max-tokens needs --base <model> to count tokens', {
          suggestion: 'add --base with a tokenizer.json, a model folder or a .gguf file',
        });
      }
      const tokenizer: NativeTokenizer | undefined = flags.base ? await loadTokenizerFor(flags.base) : undefined;
      const { summary, problems } = await validateFile(file, {
        maxChars: flags.maxChars,
        ...(flags.workers !== undefined ? { workers: flags.workers } : {}),
        ...(flags.maxTokens !== undefined ? { maxTokens: flags.maxTokens } : {}),
        ...(tokenizer ? { tokenizer } : {}),
        // Text output streams each problem as it is found, so nothing piles up in memory.
        ...(flags.json ? {} : { maxProblems: 0, onProblem: (p) => process.stdout.write(`${formatProblem(file, p)}\n`) }),
      });
      const failed = !summary.usable || (flags.strict && summary.warnings > 0);
      if (flags.json) {
        printJson({ summary, problems });
      } else {
        const kinds = Object.entries(summary.byKind)
          .filter(([, n]) => n > 0)
          .map(([k, n]) => `${k}: ${n}`)
          .join(', ');
        process.stdout.write(
          `${file}: ${summary.records} records (${kinds || 'none'}), ${summary.valid} valid, ${summary.invalid} invalid, ` +
            `${summary.duplicates} duplicates; ${summary.errors} errors, ${summary.warnings} warnings\n` +
            `${failed ? 'NOT usable' : 'usable'}${summary.records === 0 ? ' (no records)' : ''}\n`
        );
      }
      if (failed) process.exitCode = 2;
    }
  );

function printStats(s: DatasetStats): void {
  const kinds = Object.entries(s.byKind)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const row = (label: string, l: DatasetStats['chars']) =>
    `${label.padEnd(8)} total ${l.total}  min ${l.min}  mean ${l.mean}  p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  max ${l.max}\n`;
  let out = `${s.file}: ${s.records} records (${kinds || 'none'}), ${s.invalid} invalid (not counted below)\n`;
  out += row('chars', s.chars);
  if (s.tokens) {
    out += row('tokens', s.tokens);
    out += `tokens per record${s.tokens.chatTemplate ? ' (formatted with the chat template)' : ' (plain text, no chat template)'}:\n`;
    const widest = Math.max(1, ...s.tokens.histogram.map((b) => b.count));
    for (const b of s.tokens.histogram) {
      const label = b.to === null ? `${b.from}+` : `${b.from}-${b.to - 1}`;
      out += `  ${label.padStart(11)} ${String(b.count).padStart(8)} ${'#'.repeat(Math.round((b.count / widest) * 40))}\n`;
    }
    if (s.tokens.overMaxSeqLen !== undefined) out += `longer than --max-seq-len: ${s.tokens.overMaxSeqLen}\n`;
  }
  process.stdout.write(out);
}

const stats = new Command('stats')
  .description(
    "Counts by kind, character lengths and, with --base, a token length histogram using the base model's tokenizer and chat template."
  )
  .argument('<file>', 'JSONL file')
  .option('--base <model>', 'tokenizer.json, HF model folder, .gguf, or the name of a pulled model')
  .option('--max-seq-len <n>', 'also count records longer than this many tokens', integer('--max-seq-len', 1))
  .option('--json', 'print the statistics as JSON')
  .action(async (file: string, flags: { base?: string; maxSeqLen?: number; json?: boolean }) => {
    const tokenizer = flags.base ? await loadTokenizerFor(flags.base) : undefined;
    const s = await datasetStats(file, {
      ...(tokenizer ? { tokenizer } : {}),
      ...(flags.maxSeqLen !== undefined ? { maxSeqLen: flags.maxSeqLen } : {}),
    });
    if (flags.json) printJson(s);
    else printStats(s);
  });

const sibling = (file: string, suffix: string) => {
  const ext = path.extname(file);
  return path.join(path.dirname(file), `${path.basename(file, ext)}.${suffix}${ext || '.jsonl'}`);
};

const split = new Command('split')
  .description(
    'Seeded train/eval split: two streaming passes (count, then selection sampling of exactly round(n * fraction) eval records), order kept.'
  )
  .argument('<file>', 'JSONL file')
  .option(
    '--eval-fraction <f>',
    'fraction for eval (default: evalSplit from tinyforge.config.json, else 0.1)',
    numberOption('--eval-fraction', { above: 0, below: 1 })
  )
  .option('--seed <n>', 'random seed (default: seed from tinyforge.config.json, else 42)', integer('--seed'))
  .option('--train-out <file>', 'train output (default: <file>.train.jsonl)')
  .option('--eval-out <file>', 'eval output (default: <file>.eval.jsonl)')
  .option('--json', 'print the result as JSON')
  .action(async (file: string, flags: { evalFraction?: number; seed?: number; trainOut?: string; evalOut?: string; json?: boolean }) => {
    const needConfig = flags.evalFraction === undefined || flags.seed === undefined;
    const config = needConfig ? loadConfig().config : undefined;
    const trainOut = flags.trainOut ?? sibling(file, 'train');
    const evalOut = flags.evalOut ?? sibling(file, 'eval');
    const result = await splitFile(file, {
      evalFraction: flags.evalFraction ?? config!.evalSplit,
      seed: flags.seed ?? config!.seed,
      trainOut,
      evalOut,
    });
    if (flags.json) printJson({ ...result, trainOut, evalOut });
    else
      process.stdout.write(
        `${result.records} records -> ${result.train} train (${trainOut}), ${result.eval} eval (${evalOut}); seed ${result.seed}\n`
      );
  });

const dedup = new Command('dedup')
  .description(
    'Drop repeated records, keeping the first: exact (same fields) or --normalized (lowercase, whitespace collapsed, punctuation stripped).'
  )
  .argument('<file>', 'JSONL file')
  .option('--out <file>', 'output (default: <file>.dedup.jsonl)')
  .option('--normalized', 'compare normalized text instead of exact fields')
  .option('--json', 'print the result as JSON')
  .action(async (file: string, flags: { out?: string; normalized?: boolean; json?: boolean }) => {
    const out = flags.out ?? sibling(file, 'dedup');
    const result = await dedupFile(file, { out, normalized: flags.normalized ?? false });
    if (flags.json) printJson({ ...result, out });
    else
      process.stdout.write(
        `${result.records} records -> ${result.kept} kept, ${result.removed} ${result.mode} duplicates removed (${out})\n`
      );
  });

export const dataCommand = new Command('data')
  .description('Dataset tools for JSONL training data: validate, stats, split, dedup, augment.')
  .addCommand(validate)
  .addCommand(stats)
  .addCommand(split)
  .addCommand(dedup)
  .addCommand(augmentCommand);
