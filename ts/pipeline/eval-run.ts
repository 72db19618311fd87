// One eval, two callers: `foremforge eval` and `foremforge train --eval-data F` (at the end of
// training, on the new run) both go through `runEval`: answers and their metrics, eval loss and
// perplexity, and optionally general-text perplexity against the base model. `recordRunEval`
// writes the outcome into the run's tinyforge.json (`metrics.eval`), atomically.
import { readFileSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ForgeError } from '../errors.js';
import { readEvalCases } from './eval-data.js';
import { type LossSummary, readGeneralText, summarizeLoss } from './eval-loss.js';
import { type EvalResult, evaluate, formatTable, openAnswerer, summaryOf } from './eval.js';

/** The bar: tuned general-text perplexity within 10% of the base's. */
export const GENERAL_PPL_GOAL = 1.1;

export interface GeneralComparison {
  tuned: LossSummary;
  base: LossSummary;
  /** Which model `base` is: the --compare model or the run's own base. */
  baseModel: string;
  /** tuned / base perplexity. */
  ratio: number;
  withinGoal: boolean;
}

export interface EvalRunOptions {
  /** Models in column order: the evaluated one first, then the comparison, if any. */
  models: string[];
  data: string;
  maxTokens: number;
  /** General-text perplexity: true for the shipped set, a path for another file. */
  general?: boolean | string;
  onRecord?: (model: string, done: number, total: number) => void;
}

export interface EvalRunOutcome {
  results: EvalResult[];
  general?: GeneralComparison;
}

function compare(tuned: LossSummary, base: LossSummary, baseModel: string): GeneralComparison {
  const ratio = tuned.perplexity / base.perplexity;
  return { tuned, base, baseModel, ratio, withinGoal: ratio <= GENERAL_PPL_GOAL };
}

export async function runEval(options: EvalRunOptions): Promise<EvalRunOutcome> {
  const cases = await readEvalCases(options.data);
  const general =
    options.general === undefined || options.general === false
      ? undefined
      : await readGeneralText(options.general === true ? undefined : options.general);
  const results: EvalResult[] = [];
  let runBase: string | undefined;
  for (const model of options.models) {
    const answerer = await openAnswerer(model);
    if (results.length === 0) runBase = answerer.base;
    try {
      const onRecord = options.onRecord;
      results.push(
        await evaluate(answerer, cases, {
          maxTokens: options.maxTokens,
          ...(general === undefined ? {} : { general }),
          ...(onRecord === undefined ? {} : { onRecord: (done: number, total: number) => onRecord(model, done, total) }),
        })
      );
    } finally {
      await answerer.close();
    }
  }
  const tuned = results[0]?.general;
  if (general === undefined || tuned === undefined) return { results };
  const other = results[1];
  if (other?.general !== undefined) return { results, general: compare(tuned, other.general, other.model) };
  if (other === undefined && runBase !== undefined) {
    // A LoRA run without --compare: its own base is the reference the goal is about.
    const base = await openAnswerer(runBase);
    try {
      const scores = await base.scorer?.scoreTexts(general);
      const summary = scores === undefined ? undefined : summarizeLoss(scores);
      if (summary !== undefined) return { results, general: compare(tuned, summary, runBase) };
    } finally {
      await base.close();
    }
  }
  return { results };
}

/** One printed line: tuned vs base general-text perplexity and whether it meets the goal. */
export function formatGeneral(g: GeneralComparison): string {
  const verdict = g.withinGoal ? 'within' : 'NOT within';
  return (
    `general-text perplexity: ${g.tuned.perplexity.toFixed(2)} vs base ${g.base.perplexity.toFixed(2)} ` +
    `(${path.basename(g.baseModel)}): ratio ${g.ratio.toFixed(3)}, ${verdict} ${Math.round((GENERAL_PPL_GOAL - 1) * 100)}% of the base`
  );
}

/** What `train --eval-data` stores under `metrics.eval` in tinyforge.json. */
export function runEvalRecord(data: string, outcome: EvalRunOutcome): Record<string, unknown> {
  const first = outcome.results[0];
  if (first === undefined) throw new Error('runEvalRecord: no result');
  const { model: _model, kind: _kind, ...summary } = summaryOf(first);
  return {
    data: path.resolve(data),
    ...summary,
    ...(outcome.general === undefined
      ? {}
      : { generalPerplexityBase: outcome.general.base.perplexity, generalPerplexityRatio: outcome.general.ratio }),
  };
}

/** Adds `metrics.eval` to the run's tinyforge.json (temp file + rename). */
export async function recordRunEval(runDir: string, record: Record<string, unknown>): Promise<void> {
  const file = path.join(runDir, 'tinyforge.json');
  let manifest: { metrics?: Record<string, unknown> } & Record<string, unknown>;
  try {
    manifest = JSON.parse(readFileSync(file, 'utf8')) as typeof manifest;
  } catch (err) {
    throw new ForgeError('MANIFEST_INVALID', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  manifest.metrics = { ...(manifest.metrics ?? {}), eval: record };
  const tmp = path.join(runDir, `.tinyforge.json.${process.pid}.tmp`);
  try {
    await writeFile(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new ForgeError('WRITE_FAILED', `cannot write ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/** What `train --eval-data` adds to its result. */
export interface RunEval {
  /** Also written to tinyforge.json as `metrics.eval`. */
  record?: Record<string, unknown>;
  /** The printed table (one column: the run). */
  table?: string;
  /** Why no answers were scored (the file has records without a question and answer). */
  skipped?: string;
}

/**
 * `train --eval-data F`: the finished run evaluated on F exactly as `foremforge eval --model RUN
 * --data F` would (greedy answers, metrics, eval loss), recorded in the run's tinyforge.json. A file
 * the answer eval cannot read (e.g. `{"text"}` records, which only the trainer's loss uses) is
 * skipped with the reason instead of failing a run that has already trained.
 */
export async function evalAfterTraining(runDir: string, data: string, maxTokens = 64): Promise<RunEval> {
  let outcome: EvalRunOutcome;
  try {
    outcome = await runEval({ models: [runDir], data, maxTokens });
  } catch (err) {
    if (err instanceof ForgeError && err.code === 'INVALID_DATA') return { skipped: err.message.split('\n')[0]! };
    throw err;
  }
  const record = runEvalRecord(data, outcome);
  await recordRunEval(runDir, record);
  return { record, table: formatTable(outcome.results) };
}
