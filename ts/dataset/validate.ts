// `validateFile`: one streaming pass over a JSONL file that returns every problem as data
// ({line, field, code, reason, severity}) plus a summary. Memory stays bounded: lines are read a
// chunk at a time, duplicates are found through 64-bit hashes (see hash.ts), and problems beyond
// `maxProblems` are counted, not kept (`onProblem` still sees every one, e.g. to print it).
// Large files are checked on worker threads (validate-parallel.ts); results are identical.
import { statSync } from 'node:fs';
import os from 'node:os';
import { ForgeError } from '../errors.js';
import { BLANK, type CheckLinesOptions, type CheckedLines, HAS_RECORD, KIND_BY_CODE, TOO_LONG, checkLines } from './check-lines.js';
import { SeenHashes } from './hash.js';
import { readLineBatches } from './lines.js';
import { type Problem, type ProblemCode, problem } from './problems.js';
import type { RecordKind } from './record.js';
import { type NativeTokenizer, TokenCounter } from './tokens.js';
import { canRunWorkers, checkFileParallel } from './validate-parallel.js';

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
  /**
   * Worker threads that parse and check lines (0: all on this thread). Default: 2 (1 on a
   * single core) for files of 16 MiB or more, else 0: more workers cost ~30 MB RSS each for
   * little gain, the main thread's reading and merging being the next limit. Token counting
   * always runs on this thread.
   */
  workers?: number;
  /** Longest line read (characters in-process, bytes on workers); longer is LINE_TOO_LONG. Default 16 Mi. */
  maxLineChars?: number;
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
    throw new ForgeError('NOT_FOUND', `${file} does not exist or is not a file`, { suggestion: 'check the path to the JSONL file' });
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
    byKind: { pair: 0, chat: 0, text: 0 },
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

  const workers = options.workers ?? (bytes >= 16 * 1024 * 1024 ? Math.min(2, os.availableParallelism()) : 0);
  const parallel = workers > 0 && canRunWorkers && !counter;
  const source = parallel
    ? checkFileParallel(file, {
        workers,
        maxChars,
        hashes: checkDuplicates,
        ...(options.maxLineChars ? { maxLineBytes: options.maxLineChars } : {}),
      })
    : inProcess(file, options.maxLineChars, {
        maxChars,
        hashes: checkDuplicates,
        ...(counter ? { counter, maxTokens: options.maxTokens! } : {}),
      });

  // Merge in file order: the per-line results, plus what needs the whole file (mixed schemas,
  // duplicates, counts).
  for await (const { firstLine, result } of source) {
    const { flags, hashA, hashB, problems: lineProblems } = result;
    let p = 0;
    for (let i = 0; i < result.count; i++) {
      const line = firstLine + i;
      const f = flags[i]!;
      s.lines++;
      if (f & BLANK) {
        s.blankLines++;
        continue;
      }
      s.records++;
      while (p < lineProblems.length && lineProblems[p]!.line === line) report(lineProblems[p++]!);
      const kind = KIND_BY_CODE[f & 0x0f];
      if (kind) s.byKind[kind]++;
      if (!(f & HAS_RECORD) || !kind) {
        s.invalid++;
        continue;
      }
      const bad = (f & TOO_LONG) !== 0;
      if (!firstKind) firstKind = { kind, line };
      else if (kind !== firstKind.kind) {
        // A warning: training takes every record on its own (pairs and chats through the chat
        // template, text as is), but a mix is more often an ingest mistake than a plan.
        s.kind = 'mixed';
        report(
          problem(line, '', 'MIXED_SCHEMA', `record is "${kind}" but the file started with "${firstKind.kind}" (line ${firstKind.line})`)
        );
      }
      if (checkDuplicates) {
        const first = seen.add(hashA[i]!, hashB[i]!, line);
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

async function* inProcess(
  file: string,
  maxLineChars: number | undefined,
  options: CheckLinesOptions
): AsyncGenerator<{ firstLine: number; result: CheckedLines }> {
  for await (const { lines, firstLine } of readLineBatches(file, maxLineChars ? { maxLineChars } : {})) {
    yield { firstLine, result: checkLines(lines, firstLine, options) };
  }
}

/** A problem and the file it is in, for reports that span files (a train set and an eval set). */
export type FileProblem = Problem & { file: string };

/**
 * The warnings of each file, the first `limit` kept (default 1000) and all counted: what `train
 * --dry-run` prints beside the trainer's own list of rejected records, which has the errors.
 */
export async function datasetWarnings(
  files: string[],
  options: { limit?: number } = {}
): Promise<{ warnings: FileProblem[]; total: number }> {
  const limit = options.limit ?? 1000;
  const warnings: FileProblem[] = [];
  let total = 0;
  for (const file of files) {
    const onProblem = (p: Problem) => {
      if (p.severity !== 'warning') return;
      total++;
      if (warnings.length < limit) warnings.push({ ...p, file });
    };
    await validateFile(file, { maxProblems: 0, onProblem });
  }
  return { warnings, total };
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
      throw new ForgeError('INVALID_DATA', `${file} has no records`, {
        suggestion: 'add one JSON object per line: {"input": ..., "output": ...}',
      });
    }
    throw problemsToError(file, errors, { total: summary.errors });
  }
  return summary;
}
