// `foremforge data augment`: each question/answer record is written as is, then followed by up to
// N rewordings of its question that the base model itself generated (sampling with a fixed seed,
// so the same input, model and seed give the same file), each paired with the same answer. Why:
// a fact trained from one wording comes back for that wording only (Allen-Zhu & Li, "Physics of
// Language Models 3.1", 2023: knowledge becomes extractable under new wording when training sees
// it stated in varied forms); benches/results/recipe-sweep.md measures what it buys here.
// Optionally each answer is also written as a plain {"text"} statement. The filter rules live in
// ./augment-filter.ts. The input is read whole: augmentation is for small QA sets, where the model
// calls, not the bytes, are the cost.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Generator } from '@tinyforge/native';
import { ForgeError } from '../errors.js';
import {
  DROP_REASONS,
  type DropReason,
  answerWords,
  cleanParaphrase,
  judgeParaphrase,
  normalizeWording,
  paraphrasePrompt,
} from './augment-filter.js';
import { checkLine } from './check-record.js';
import type { ChatMessage } from './record.js';
import { LineWriter, assertDistinct } from './writer.js';

export interface AugmentOptions {
  /** Rewordings wanted per question. */
  paraphrases: number;
  seed?: number;
  /** Also write each answer as a {"text"} record. */
  statements?: boolean;
  /** Generations tried per wanted rewording before giving up on the rest. @default 3 */
  attemptsPer?: number;
  /** Sampling temperature. @default 0.9 */
  temperature?: number;
  onRecord?: (done: number, total: number) => void;
}

export interface AugmentReport {
  records: number;
  /** Records reworded (single-turn questions). */
  augmented: number;
  /** Records copied unchanged (text records, multi-turn chats). */
  copied: number;
  generated: number;
  kept: number;
  statements: number;
  dropped: Record<DropReason, number>;
  /** Records that got fewer rewordings than asked. */
  short: number;
  written: number;
  seconds: number;
}

interface Question {
  system?: string;
  question: string;
  answer: string;
  key?: string;
}

/** The single question and answer of a record, or undefined when it has none to reword. */
function questionOf(value: Record<string, unknown>): Question | undefined {
  const key = typeof value._key === 'string' ? value._key : typeof value.key === 'string' ? value.key : undefined;
  const extra = key === undefined ? {} : { key };
  if (typeof value.input === 'string' && typeof value.output === 'string') {
    const system = typeof value.system === 'string' && value.system.trim() !== '' ? { system: value.system } : {};
    return { question: value.input, answer: value.output, ...system, ...extra };
  }
  if (Array.isArray(value.messages)) {
    const msgs = value.messages as ChatMessage[];
    const turns = msgs.filter((m) => m.role !== 'system');
    if (turns.length !== 2 || turns[0]!.role !== 'user' || turns[1]!.role !== 'assistant') return undefined;
    const system = msgs.find((m) => m.role === 'system');
    return { question: turns[0]!.content, answer: turns[1]!.content, ...(system ? { system: system.content } : {}), ...extra };
  }
  return undefined;
}

/** Reads and checks every line first, so a bad line fails before any model call. */
async function readRecords(file: string): Promise<{ line: number; text: string; value: Record<string, unknown> }[]> {
  if (!existsSync(file))
    throw new ForgeError('NOT_FOUND', `--in ${file} does not exist`, { suggestion: 'pass a JSONL file of {"input","output"} records' });
  const lines = (await readFile(file, 'utf8')).split('\n');
  const out: { line: number; text: string; value: Record<string, unknown> }[] = [];
  const problems: string[] = [];
  lines.forEach((text, i) => {
    if (text.trim() === '') return;
    const checked = checkLine(text, i + 1);
    const errors = checked.problems.filter((p) => p.severity === 'error');
    if (errors.length > 0)
      for (const p of errors) problems.push(`${file}:${i + 1}: ${p.field === '' ? 'record' : p.field}: ${p.reason} [${p.code}]`);
    else out.push({ line: i + 1, text, value: JSON.parse(text) as Record<string, unknown> });
  });
  if (problems.length > 0) {
    const shown = problems.slice(0, 10).join('\n');
    const more = problems.length > 10 ? `\n... and ${problems.length - 10} more` : '';
    throw new ForgeError('INVALID_DATA', `${problems.length} bad record(s) in ${file}:\n${shown}${more}`, {
      suggestion: '`foremforge data validate` lists every problem',
    });
  }
  if (out.length === 0)
    throw new ForgeError('INVALID_DATA', `${file} has no records`, { suggestion: 'pass a JSONL file with one record per line' });
  return out;
}

/** The record a rewording becomes: the original's shape, the new question, the same answer. */
function reworded(value: Record<string, unknown>, q: Question, question: string, line: number): Record<string, unknown> {
  if ('messages' in value) {
    const messages: ChatMessage[] = [];
    if (q.system !== undefined) messages.push({ role: 'system', content: q.system });
    messages.push({ role: 'user', content: question }, { role: 'assistant', content: q.answer });
    return { messages, _augmented_from: line };
  }
  return { ...(q.system === undefined ? {} : { system: q.system }), input: question, output: q.answer, _augmented_from: line };
}

/** `loadGenerator` is called once the input has passed its checks, so bad input fails fast. */
export async function augmentFile(
  input: string,
  out: string,
  loadGenerator: () => Promise<Generator>,
  options: AugmentOptions
): Promise<AugmentReport> {
  if (!Number.isInteger(options.paraphrases) || options.paraphrases < 0) {
    throw new ForgeError('INVALID_ARGUMENT', `--paraphrases must be a non-negative integer, got ${options.paraphrases}`);
  }
  assertDistinct(input, out);
  const started = performance.now();
  const records = await readRecords(input);
  const questions = records.map((r) => questionOf(r.value));
  if (!questions.some(Boolean)) {
    throw new ForgeError('INVALID_DATA', `${input} has no question/answer records to reword`, {
      suggestion: 'augment works on {"input","output"} records and single-turn {"messages"} chats',
    });
  }
  const generator = options.paraphrases > 0 ? await loadGenerator() : undefined;
  const attemptsPer = options.attemptsPer ?? 3;
  const seed = options.seed ?? 42;
  const dropped = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  const report: AugmentReport = {
    records: records.length,
    augmented: 0,
    copied: 0,
    generated: 0,
    kept: 0,
    statements: 0,
    dropped,
    short: 0,
    written: 0,
    seconds: 0,
  };
  const writer = new LineWriter(out);
  try {
    for (const [i, r] of records.entries()) {
      const q = questions[i];
      const lines = [r.text];
      if (q === undefined) report.copied++;
      else {
        report.augmented++;
        const leaks = answerWords(q.question, q.answer, q.key);
        const seen = new Set([normalizeWording(q.question)]);
        const prompt = paraphrasePrompt(q.question);
        // ~1.3 tokens a word: twice the question's words leaves room for a longer wording.
        const maxTokens = Math.max(24, 3 * q.question.split(/\s+/u).length);
        let kept = 0;
        for (let a = 0; a < options.paraphrases * attemptsPer && kept < options.paraphrases; a++) {
          // One seed per (record, attempt): a record's rewordings do not depend on the others'.
          const g = await generator!.generate(prompt, {
            maxTokens,
            temperature: options.temperature ?? 0.9,
            topP: 0.95,
            seed: (seed * 1_000_003 + r.line * 101 + a) >>> 0,
            stop: ['\n'],
          });
          report.generated++;
          const text = cleanParaphrase(g.text);
          const why = judgeParaphrase(text, q.question, leaks, seen);
          if (why !== undefined) dropped[why]++;
          else {
            seen.add(normalizeWording(text));
            lines.push(JSON.stringify(reworded(r.value, q, text, r.line)));
            kept++;
          }
        }
        report.kept += kept;
        if (kept < options.paraphrases) report.short++;
        if (options.statements) {
          lines.push(JSON.stringify({ text: q.answer, _augmented_from: r.line }));
          report.statements++;
        }
      }
      await writer.write(lines);
      options.onRecord?.(i + 1, records.length);
    }
    report.written = writer.lines;
    await writer.close();
  } catch (err) {
    await writer.abort();
    throw err;
  }
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

/** The report in a few lines, reasons with a count only. */
export function formatAugmentReport(r: AugmentReport, out: string): string {
  const why = DROP_REASONS.filter((d) => r.dropped[d] > 0)
    .map((d) => `${d} ${r.dropped[d]}`)
    .join(', ');
  return [
    `${r.records} records: ${r.augmented} reworded, ${r.copied} copied as they are${r.statements ? `, ${r.statements} answers also written as statements` : ''}`,
    `rewordings: ${r.generated} generated, ${r.kept} kept, ${r.generated - r.kept} dropped${why ? ` (${why})` : ''}` +
      (r.short > 0 ? `; ${r.short} questions got fewer than asked` : ''),
    `wrote ${r.written} records to ${out} in ${r.seconds.toFixed(1)} s`,
  ].join('\n');
}
