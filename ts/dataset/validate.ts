// `validateFile`: one streaming pass over a JSONL file that returns every problem as data
// ({line, field, code, reason, severity}) plus a summary. Memory stays bounded: lines are read a
// chunk at a time, duplicates are found through 64-bit hashes (see hash.ts), and problems beyond
// `maxProblems` are counted, not kept (`onProblem` still sees every one, e.g. to print it).
import { statSync } from 'node:fs';
import { ForgeError } from '../errors.js';
import { recordHash } from './canonical.js';
import { SeenHashes } from './hash.js';
import { OVERLONG_LINE, readLineBatches } from './lines.js';
import { type Problem, type ProblemCode, type RecordKind, checkRecord, problem } from './record.js';
import { type NativeTokenizer, TokenCounter } from './tokens.js';

export interface ValidateOptions {
  /** Longest record in characters (all text fields). Default 65536. */
  maxChars?: number;
  /** Longest record in tokens, counted with `tokenizer` (ignored without one). */
  maxTokens?: number;
  tokenizer?: NativeTokenizer;
  /** Problems kept in the result; the rest are only counted. Default 100000. */
  maxProblems?: number;
  /** Called for every problem, in file order. */
  onProblem?: (p: Problem) => void;
  /** Report exact duplicates (default true). */
  duplicates?: boolean;
}

export interface ValidationSummary {
  file: string;
  bytes: number;
  /** Lines in the file, blank ones included. */
  lines: number;
  blankLines: number;
  /** Non-blank lines. */
  records: number;
  /** Records without errors (duplicates count as valid: the first copy is used). */
  valid: number;
  invalid: number;
  duplicates: number;
  byKind: Record<RecordKind, number>;
  /** The file's schema: the kind of its first valid record, or 'mixed'. */
  kind: RecordKind | 'mixed' | undefined;
  errors: number;
  warnings: number;
  problemCounts: Partial<Record<ProblemCode, number>>;
  /** Problems beyond maxProblems were counted but not kept. */
  truncated: boolean;
  /** True when there are records and no errors. */
  usable: boolean;
}

export interface ValidationResult {
  summary: ValidationSummary;
  problems: Problem[];
}

export async function validateFile(file: string, options: ValidateOptions = {}): Promise<ValidationResult> {
  let bytes: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new Error('not a file');
    bytes = st.size;
  } catch {
    throw new ForgeError('FILE_NOT_FOUND', `${file} does not exist or is not a file`, { suggestion: 'check the path to the JSONL file' });
  }
  const maxChars = options.maxChars ?? 65536;
  const maxProblems = options.maxProblems ?? 100_000;
  const counter = options.tokenizer && options.maxTokens !== undefined ? new TokenCounter(options.tokenizer) : undefined;
  const checkDuplicates = options.duplicates ?? true;
  const seen = new SeenHashes();
  const problems: Problem[] = [];
  const s: ValidationSummary = {
    file,
    bytes,
    lines: 0,
    blankLines: 0,
    records: 0,
    valid: 0,
    invalid: 0,
    duplicates: 0,
    byKind: { io: 0, messages: 0, text: 0 },
    kind: undefined,
    errors: 0,
    warnings: 0,
    problemCounts: {},
    truncated: false,
    usable: false,
  };
  let firstKind: { kind: RecordKind; line: number } | undefined;

  const report = (p: Problem) => {
    if (p.severity === 'error') s.errors++;
    else s.warnings++;
    s.problemCounts[p.code] = (s.problemCounts[p.code] ?? 0) + 1;
    if (problems.length < maxProblems) problems.push(p);
    else s.truncated = true;
    options.onProblem?.(p);
  };

  for await (const batch of readLineBatches(file)) {
    const { lines, firstLine } = batch;
    for (let i = 0; i < lines.length; i++) {
      const text = lines[i]!;
      const line = firstLine + i;
      s.lines++;
      if (text === OVERLONG_LINE) {
        s.records++;
        s.invalid++;
        report(problem(line, '', 'LINE_TOO_LONG', 'line is too long to read (over 16 Mi characters)'));
        continue;
      }
      if (text.trim().length === 0) {
        s.blankLines++;
        continue;
      }
      s.records++;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        s.invalid++;
        report(problem(line, '', 'BAD_JSON', `not valid JSON: ${(err as Error).message}`));
        continue;
      }
      const checked = checkRecord(value, line);
      let bad = false;
      for (const p of checked.problems) {
        report(p);
        if (p.severity === 'error') bad = true;
      }
      if (checked.kind) s.byKind[checked.kind]++;
      const record = checked.record;
      if (!record || !checked.kind) {
        s.invalid++;
        continue;
      }
      if (checked.chars > maxChars) {
        bad = true;
        report(problem(line, '', 'TOO_LONG', `record has ${checked.chars} characters (limit ${maxChars})`));
      } else if (counter) {
        const tokens = counter.count(record);
        if (tokens > options.maxTokens!) {
          bad = true;
          report(problem(line, '', 'TOO_LONG', `record has ${tokens} tokens (limit ${options.maxTokens})`));
        }
      }
      if (!firstKind) firstKind = { kind: checked.kind, line };
      else if (checked.kind !== firstKind.kind) {
        bad = true;
        s.kind = 'mixed';
        report(
          problem(line, '', 'MIXED_SCHEMA', `record is "${checked.kind}" but the file started with "${firstKind.kind}" (line ${firstKind.line})`),
        );
      }
      if (checkDuplicates) {
        const [a, b] = recordHash(record);
        const first = seen.add(a, b, line);
        if (first !== 0) {
          s.duplicates++;
          report(problem(line, '', 'DUPLICATE', `same record as line ${first}`));
        }
      }
      if (bad) s.invalid++;
      else s.valid++;
    }
  }
  if (s.kind === undefined) s.kind = firstKind?.kind;
  s.usable = s.valid > 0 && s.errors === 0;
  return { summary: s, problems };
}

/** `file:line field: reason [CODE]`, the format every tool prints problems in. */
export function formatProblem(file: string, p: Problem): string {
  const where = p.field ? ` ${p.field}:` : '';
  return `${file}:${p.line}:${where} ${p.reason} [${p.code}${p.severity === 'warning' ? ', warning' : ''}]`;
}

/**
 * Turns a problem list into one INVALID_DATA error listing the first `limit` problems with
 * file:line, so a caller (training, export) fails once with everything the user must fix.
 */
export function problemsToError(file: string, problems: Problem[], options: { limit?: number; total?: number } = {}): ForgeError {
  const limit = options.limit ?? 20;
  const total = options.total ?? problems.length;
  const shown = problems.slice(0, limit).map((p) => `  ${formatProblem(file, p)}`);
  const more = total > shown.length ? `\n  ... and ${total - shown.length} more` : '';
  const err = new ForgeError('INVALID_DATA', `${file} has ${total} problem${total === 1 ? '' : 's'}:\n${shown.join('\n')}${more}`, {
    suggestion: `run \`foremforge data validate ${file}\` for the full list`,
  });
  return Object.assign(err, { problems: problems.slice(0, limit), file });
}

/** Validates and throws one aggregated INVALID_DATA error when the file has errors. */
export async function assertUsable(file: string, options: ValidateOptions = {}): Promise<ValidationSummary> {
  const { summary, problems } = await validateFile(file, { ...options, maxProblems: options.maxProblems ?? 1000 });
  if (!summary.usable) {
    const errors = problems.filter((p) => p.severity === 'error');
    if (summary.records === 0) {
      throw new ForgeError('INVALID_DATA', `${file} has no records`, { suggestion: 'add one JSON object per line: {"input": ..., "output": ...}' });
    }
    throw problemsToError(file, errors, { total: summary.errors });
  }
  return summary;
}
