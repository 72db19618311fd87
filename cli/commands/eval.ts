// `foremforge eval --model M --data eval.jsonl [--compare BASE] [--out report.jsonl]`: greedy
// answers for every eval record, scored (fact recall, contains, exact match, token F1, mean
// confidence) and printed as one table with a column per model. Library: ts/pipeline/eval.ts.
import { Command } from 'commander';
import { ForgeError } from '../../ts/errors.js';
import { readEvalCases } from '../../ts/pipeline/eval-data.js';
import { type EvalResult, evaluate, formatTable, openAnswerer, writeReport } from '../../ts/pipeline/eval.js';

interface EvalFlags {
  model: string;
  data: string;
  compare?: string;
  out?: string;
  maxTokens: string;
  json?: boolean;
}

function maxTokensFlag(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isInteger(n) || n < 1 || n > 4096) {
    throw new ForgeError('INVALID_ARGUMENT', `--max-tokens must be an integer from 1 to 4096, got "${value}"`);
  }
  return n;
}

export const evalCommand = new Command('eval')
  .description('Answer every eval record greedily and score the answers (fact recall, contains, exact match, token F1).')
  .requiredOption('--model <path>', 'training run folder, export folder, model folder, .gguf file or catalog name')
  .requiredOption('--data <file>', 'JSONL eval records: {"input","output","_key"?} or {"messages"}')
  .option('--compare <path>', 'a second model (usually the base) scored side by side')
  .option('--out <file>', 'write per-record answers and scores as JSONL (replaced if it exists)')
  .option('--max-tokens <n>', 'longest answer in tokens', '64')
  .option('--json', 'print the summaries as JSON')
  .exitOverride()
  .action(async (flags: EvalFlags) => {
    const maxTokens = maxTokensFlag(flags.maxTokens);
    const cases = await readEvalCases(flags.data);
    const results: EvalResult[] = [];
    for (const model of flags.compare === undefined ? [flags.model] : [flags.model, flags.compare]) {
      const answerer = await openAnswerer(model);
      const progress = process.stderr.isTTY
        ? (done: number, total: number) => process.stderr.write(`\r${model}: ${done}/${total}`)
        : undefined;
      try {
        results.push(await evaluate(answerer, cases, { maxTokens, ...(progress ? { onRecord: progress } : {}) }));
      } finally {
        await answerer.close();
      }
      if (progress) process.stderr.write('\n');
    }
    if (flags.out !== undefined) await writeReport(flags.out, results);
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(results.map((r) => ({ model: r.model, kind: r.kind, seconds: r.seconds, ...r.summary })))}\n`);
    } else {
      process.stdout.write(`${formatTable(results)}\n`);
      if (flags.out !== undefined) process.stdout.write(`per-record answers: ${flags.out}\n`);
    }
  });
