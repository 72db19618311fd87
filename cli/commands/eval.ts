// `foremforge eval --model M --data eval.jsonl [--compare BASE] [--general [FILE]] [--out report.jsonl]`:
// greedy answers for every eval record, scored (fact recall, contains, exact match, token F1, mean
// confidence), eval loss and perplexity of the reference answers, optionally general-text
// perplexity against the base, printed as one table with a column per model.
// Library: ts/pipeline/eval-run.ts (shared with `train --eval-data`).
import { Command } from 'commander';
import { formatGeneral, runEval } from '../../ts/pipeline/eval-run.js';
import { formatTable, summaryOf, writeReport } from '../../ts/pipeline/eval.js';
import { numberFlag } from '../flags.js';

interface EvalFlags {
  model: string;
  data: string;
  compare?: string;
  out?: string;
  maxTokens: string;
  json?: boolean;
  general?: boolean | string;
}

export const evalCommand = new Command('eval')
  .description('Answer every eval record greedily and score the answers (fact recall, contains, exact match, token F1, eval loss).')
  .requiredOption('--model <path>', 'training run folder, export folder, model folder, .gguf file or catalog name')
  .requiredOption('--data <file>', 'JSONL eval records: {"input","output","_key"?} or {"messages"}')
  .option('--compare <path>', 'a second model (usually the base) scored side by side')
  .option('--out <file>', 'write per-record answers and scores as JSONL (replaced if it exists)')
  .option('--general [file]', 'also report general-text perplexity vs the base (default: the shipped held-out prose)')
  .option('--max-tokens <n>', 'longest answer in tokens', '64')
  .option('--json', 'print the summaries as JSON')
  .exitOverride()
  .action(async (flags: EvalFlags) => {
    const maxTokens = numberFlag('--max-tokens', flags.maxTokens, { integer: true, min: 1, max: 4096 });
    const tty = process.stderr.isTTY;
    const outcome = await runEval({
      models: flags.compare === undefined ? [flags.model] : [flags.model, flags.compare],
      data: flags.data,
      maxTokens,
      ...(flags.general === undefined ? {} : { general: flags.general }),
      ...(tty
        ? {
            onRecord: (model: string, done: number, total: number) =>
              process.stderr.write(`\r${model}: ${done}/${total}${done === total ? '\n' : ''}`),
          }
        : {}),
    });
    const { results, general } = outcome;
    if (flags.out !== undefined) await writeReport(flags.out, results);
    if (flags.json) {
      const summaries = results.map(summaryOf);
      process.stdout.write(`${JSON.stringify(general === undefined ? summaries : { models: summaries, general })}\n`);
    } else {
      process.stdout.write(`${formatTable(results)}\n`);
      if (general !== undefined) process.stdout.write(`${formatGeneral(general)}\n`);
      if (results.some((r) => r.loss === undefined)) {
        process.stdout.write('eval loss: - = this model kind cannot score text yet (an export before InferenceSession.score)\n');
      }
      if (flags.out !== undefined) process.stdout.write(`per-record answers: ${flags.out}\n`);
    }
  });
