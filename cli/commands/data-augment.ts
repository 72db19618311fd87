// `foremforge data augment --in F --out G [--paraphrases N] [--seed S] [--statements]`: each
// question followed by N rewordings the base model writes (ts/dataset/augment.ts), with a report
// of what was kept and why the rest was dropped.
import { Command } from 'commander';
import { augmentFile, formatAugmentReport } from '../../ts/dataset/augment.js';
import { native } from '../../ts/native.js';
import { resolveBase } from '../../ts/pipeline/train.js';
import { numberOption } from '../flags.js';

const count = (flag: string) => numberOption(flag, { integer: true, min: 0 });

interface AugmentFlags {
  in: string;
  out: string;
  paraphrases: number;
  seed: number;
  base?: string;
  statements?: boolean;
  json?: boolean;
}

export const augmentCommand = new Command('augment')
  .description(
    'Add rewordings of each question, written by the base model (sampled with a fixed seed, filtered: no duplicates, no empty ones, none that give the answer away, length limits); originals kept.'
  )
  .requiredOption('--in <file>', 'JSONL records: {"input","output"} or single-turn {"messages"}')
  .requiredOption('--out <file>', 'augmented JSONL (written atomically)')
  .option('--paraphrases <n>', 'rewordings per question', count('--paraphrases'), 3)
  .option('--seed <n>', 'sampling seed (same seed, model and input: same file)', count('--seed'), 42)
  .option('--base <model>', 'model that writes the rewordings (default: smollm2-135m-instruct)')
  .option('--statements', 'also write each answer as a {"text"} statement record')
  .option('--json', 'print the report as JSON')
  .action(async (flags: AugmentFlags) => {
    const tty = process.stderr.isTTY === true;
    const report = await augmentFile(flags.in, flags.out, async () => native().Generator.load(await resolveBase(flags.base)), {
      paraphrases: flags.paraphrases,
      seed: flags.seed,
      statements: flags.statements === true,
      ...(tty ? { onRecord: (done: number, total: number) => process.stderr.write(`\r${done}/${total} records`) } : {}),
    });
    if (tty) process.stderr.write('\n');
    if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else process.stdout.write(`${formatAugmentReport(report, flags.out)}\n`);
  });
