// `foremforge eval`: greedy answers for every eval record, scored against the reference (exact
// match, contains, token F1, fact recall on `_key`; ./eval-metrics.ts), with mean confidence, and
// a per-record report. The model side is an `Answerer` (one `answer(messages)` per model kind):
// model and run folders answer through the candle `Generator`, an export folder through the ONNX
// Runtime `InferenceSession` (the engine `serve` uses for it), so `--compare run export` shows
// what int8 quantization cost next to the run it came from.
//
// Eval loss and perplexity (./eval-loss.ts): the reference answer's tokens given the prompt,
// teacher-forced, as training counts them; and with `general` texts, their perplexity, to see
// whether a fine-tune kept the base model's general language. An export reports them once its
// `InferenceSession` can score; until then they are absent (printed as '-').
import { existsSync, statSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Generation, Generator, InferenceSession } from '@tinyforge/native';
import type { ChatMessage } from '../dataset/index.js';
import { ForgeError } from '../errors.js';
import { catalogNames } from '../models/catalog.js';
import { native } from '../native.js';
import { resolveServeTarget } from '../serve/load-engine.js';
import type { EvalCase } from './eval-data.js';
import { type LossSummary, type Scorer, candleScorer, ortScorer, summarizeLoss } from './eval-loss.js';
import { type RecordScores, type ScoreSummary, scoreAnswer, summarize } from './eval-metrics.js';
import { resolveBase } from './train.js';

export interface Answer {
  text: string;
  confidence: number;
  completionTokens: number;
  finishReason: string;
}

/** A model that answers questions greedily, whatever runs it. */
export interface Answerer {
  /** What the user named (path or catalog name), for the table and the report. */
  label: string;
  kind: 'model' | 'run' | 'export';
  answer(messages: ChatMessage[], maxTokens: number): Promise<Answer>;
  /** Teacher-forced scoring; undefined when this kind of model cannot score yet. */
  scorer?: Scorer;
  /** A LoRA run's base model (path), for the general-text ratio against it. */
  base?: string;
  /** Frees the model (the ORT session's scheduler thread); the answerer is unusable after. */
  close(): Promise<void>;
}

function candleAnswerer(label: string, kind: 'model' | 'run', generator: Generator, base?: string): Answerer {
  return {
    label,
    kind,
    scorer: candleScorer(generator),
    ...(base === undefined ? {} : { base }),
    async answer(messages, maxTokens) {
      const g: Generation = await generator.generate(messages, { maxTokens, temperature: 0 });
      return { text: g.text, confidence: g.confidence, completionTokens: g.completionTokens, finishReason: g.finishReason };
    },
    async close() {},
  };
}

function ortAnswerer(label: string, session: InferenceSession, dir: string): Answerer {
  const scorer = ortScorer(session, dir);
  return {
    label,
    kind: 'export',
    ...(scorer === undefined ? {} : { scorer }),
    async answer(messages, maxTokens) {
      // Greedy with the chat template, as the candle side asks; confidence counts the EOS too.
      const r = await session.generate(messages, { maxTokens, temperature: 0, chatTemplate: true });
      return { text: r.text, confidence: r.confidence, completionTokens: r.usage.completionTokens, finishReason: r.finishReason };
    },
    async close() {
      session.close();
    },
  };
}

/**
 * Loads what `model` names: a base model (folder or .gguf), a training run folder (its base plus
 * adapter, as `serve` resolves it), an export folder (ONNX Runtime) or a catalog name (pulled if
 * not cached).
 */
export async function openAnswerer(model: string): Promise<Answerer> {
  let target: ReturnType<typeof resolveServeTarget>;
  if (existsSync(model)) {
    // Checked here too so the message names --model; resolveServeTarget's names serve's --dir.
    const dir = statSync(model).isDirectory();
    if (dir && !existsSync(path.join(model, 'config.json')) && !existsSync(path.join(model, 'tinyforge.json'))) {
      throw new ForgeError(
        'MODEL_NOT_FOUND',
        `--model ${model} is neither a model (config.json or .gguf) nor a run or export folder (tinyforge.json)`,
        {
          suggestion: 'pass a base model, a `foremforge train` run folder, a `foremforge export` folder or a catalog name',
        }
      );
    }
    target = resolveServeTarget(model);
  } else if (catalogNames().includes(model.toLowerCase())) {
    target = { kind: 'model', model: await resolveBase(model), id: model };
  } else {
    throw new ForgeError('MODEL_NOT_FOUND', `model ${model} does not exist: not a path and not a catalog name`, {
      suggestion: `pass a model folder, a .gguf file, a \`foremforge train\` run folder, or one of ${catalogNames().join(', ')}`,
    });
  }
  if (target.kind === 'export') {
    // One slot: eval asks one question at a time, so more slots would only hold KV memory.
    return ortAnswerer(model, await native().InferenceSession.load(target.dir, { slots: 1 }), target.dir);
  }
  const adapter = target.kind === 'run' ? target.adapter : undefined;
  const generator = await native().Generator.load(target.model, adapter === undefined ? {} : { adapter });
  return candleAnswerer(model, target.kind, generator, adapter === undefined ? undefined : target.model);
}

export interface EvalRow {
  line: number;
  question: string;
  reference: string;
  key?: string;
  answer: string;
  confidence: number;
  finishReason: string;
  scores: RecordScores;
  /** The reference answer's summed NLL and token count given the prompt, when the model scores. */
  nll?: number;
  tokens?: number;
}

export interface EvalResult {
  model: string;
  kind: Answerer['kind'];
  rows: EvalRow[];
  summary: ScoreSummary;
  /** Eval loss and perplexity of the reference answers; absent when the model cannot score. */
  loss?: LossSummary;
  /** Perplexity of the general texts, when asked for and the model scores. */
  general?: LossSummary;
  seconds: number;
}

export interface EvaluateOptions {
  maxTokens: number;
  onRecord?: (done: number, total: number) => void;
  /** General (not training-domain) texts whose perplexity is reported too. */
  general?: readonly string[];
}

/** Answers every case in order (greedy, deterministic) and scores it. */
export async function evaluate(answerer: Answerer, cases: readonly EvalCase[], options: EvaluateOptions): Promise<EvalResult> {
  const started = performance.now();
  const rows: EvalRow[] = [];
  for (const c of cases) {
    const a = await answerer.answer(c.messages, options.maxTokens);
    rows.push({
      line: c.line,
      question: c.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '',
      reference: c.reference,
      ...(c.key === undefined ? {} : { key: c.key }),
      answer: a.text,
      confidence: a.confidence,
      finishReason: a.finishReason,
      scores: scoreAnswer(a.text, c.reference, c.key),
    });
    options.onRecord?.(rows.length, cases.length);
  }
  let loss: LossSummary | undefined;
  let general: LossSummary | undefined;
  const scorer = answerer.scorer;
  if (scorer !== undefined) {
    const scores = await scorer.scoreAnswers(cases.map((c) => [...c.messages, { role: 'assistant', content: c.reference }]));
    scores.forEach((s, i) => {
      Object.assign(rows[i]!, { nll: s.nll, tokens: s.tokens });
    });
    loss = summarizeLoss(scores);
    if (options.general !== undefined) general = summarizeLoss(await scorer.scoreTexts([...options.general]));
  }
  return {
    model: answerer.label,
    kind: answerer.kind,
    rows,
    summary: summarize(rows),
    ...(loss === undefined ? {} : { loss }),
    ...(general === undefined ? {} : { general }),
    seconds: (performance.now() - started) / 1000,
  };
}

/** The summary line of a result as the report and `--json` give it. */
export function summaryOf(r: EvalResult): Record<string, unknown> {
  return {
    model: r.model,
    kind: r.kind,
    seconds: r.seconds,
    ...r.summary,
    evalLoss: r.loss?.loss ?? null,
    perplexity: r.loss?.perplexity ?? null,
    ...(r.general === undefined ? {} : { generalPerplexity: r.general.perplexity, generalTokens: r.general.tokens }),
  };
}

/**
 * One JSON line per record and model (`model` says which), then one `{"summary"}` line per model.
 * Written to a temp file beside `out` and renamed, so a reader never sees half a report.
 */
export async function writeReport(out: string, results: readonly EvalResult[]): Promise<void> {
  const lines: string[] = [];
  for (const r of results) for (const row of r.rows) lines.push(JSON.stringify({ model: r.model, ...row }));
  for (const r of results) lines.push(JSON.stringify({ summary: summaryOf(r) }));
  const tmp = path.join(path.dirname(out), `.${path.basename(out)}.${process.pid}.tmp`);
  try {
    await writeFile(tmp, `${lines.join('\n')}\n`);
    await rename(tmp, out);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new ForgeError('WRITE_FAILED', `cannot write the report ${out}: ${(err as Error).message}`, { cause: err });
  }
}

const pct = (x: number | undefined): string => (x === undefined ? '-' : `${(100 * x).toFixed(1)}%`);

/** The printed table: one metric per row, one column per model. */
export function formatTable(results: readonly EvalResult[]): string {
  const rows: [string, ...string[]][] = [
    // A path's last part keeps the columns narrow; the report holds the full path.
    ['', ...results.map((r) => (r.model.includes(path.sep) ? path.basename(r.model) : r.model))],
    ['records', ...results.map((r) => String(r.summary.records))],
    [
      'fact recall',
      ...results.map((r) =>
        r.summary.factRecall === undefined ? '-' : `${pct(r.summary.factRecall)} (${r.summary.recalled}/${r.summary.keyed})`
      ),
    ],
    ['contains reference', ...results.map((r) => pct(r.summary.contains))],
    ['exact match', ...results.map((r) => pct(r.summary.exactMatch))],
    ['token F1', ...results.map((r) => pct(r.summary.f1))],
    ['mean confidence', ...results.map((r) => r.summary.meanConfidence.toFixed(3))],
    ['eval loss', ...results.map((r) => r.loss?.loss.toFixed(4) ?? '-')],
    ['perplexity', ...results.map((r) => r.loss?.perplexity.toFixed(2) ?? '-')],
    ...(results.some((r) => r.general !== undefined)
      ? [['general ppl', ...results.map((r) => r.general?.perplexity.toFixed(2) ?? '-')] as [string, ...string[]]]
      : []),
    ['seconds', ...results.map((r) => r.seconds.toFixed(1))],
  ];
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  return rows
    .map((row) => row.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join('  '))
    .join('\n');
}
