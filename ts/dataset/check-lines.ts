// The per-line half of validation, free of any cross-line state so it can run on a worker
// thread: parse, check the record's shape and length, hash its canonical form. What needs the
// whole file in order (mixed schemas, duplicates, counts) is done by the caller when it merges
// the results (validate.ts). Results are typed arrays, cheap to transfer between threads.
import { recordHash } from './canonical.js';
import { OVERLONG_LINE } from './lines.js';
import { checkLine } from './check-record.js';
import { type Problem, problem } from './problems.js';
import { type RecordKind, isBlank } from './record.js';
import type { TokenCounter } from './tokens.js';

export const KIND_CODES: Record<RecordKind, number> = { pair: 1, chat: 2, text: 3 };
export const KIND_BY_CODE: readonly (RecordKind | undefined)[] = [undefined, 'pair', 'chat', 'text'];

/** Bits of LineFlags besides the kind code in the low nibble. */
export const HAS_RECORD = 0x10; // the record's shape is right (it may still be too long)
export const TOO_LONG = 0x20;
export const BLANK = 0x40;

export interface CheckedLines {
  count: number;
  /** Per line: kind code | HAS_RECORD | TOO_LONG | BLANK. */
  flags: Uint8Array;
  /** Per line with HAS_RECORD: the canonical hash's two lanes. */
  hashA: Uint32Array;
  hashB: Uint32Array;
  /** Problems of the lines themselves, in line order, numbered from firstLine. */
  problems: Problem[];
}

export interface CheckLinesOptions {
  maxChars: number;
  maxTokens?: number;
  counter?: TokenCounter;
  hashes: boolean;
}

export function checkLines(lines: string[], firstLine: number, options: CheckLinesOptions): CheckedLines {
  const n = lines.length;
  const flags = new Uint8Array(n);
  const hashA = new Uint32Array(options.hashes ? n : 0);
  const hashB = new Uint32Array(options.hashes ? n : 0);
  const problems: Problem[] = [];
  for (let i = 0; i < n; i++) {
    const text = lines[i]!;
    const line = firstLine + i;
    if (text === OVERLONG_LINE) {
      problems.push(problem(line, '', 'LINE_TOO_LONG', 'line is too long to read (over 16 Mi characters)'));
      continue;
    }
    // Fast path: a record line starts with '{'; only other lines need the whitespace check.
    if (text.charCodeAt(0) !== 123 && isBlank(text)) {
      flags[i] = BLANK;
      continue;
    }
    const checked = checkLine(text, line);
    for (const p of checked.problems) problems.push(p);
    let f = checked.kind ? KIND_CODES[checked.kind] : 0;
    const record = checked.record;
    if (record) {
      f |= HAS_RECORD;
      if (checked.chars > options.maxChars) {
        f |= TOO_LONG;
        problems.push(problem(line, '', 'TOO_LONG', `record has ${checked.chars} characters (limit ${options.maxChars})`));
      } else if (options.counter && options.maxTokens !== undefined) {
        const tokens = options.counter.count(record);
        if (tokens > options.maxTokens) {
          f |= TOO_LONG;
          problems.push(problem(line, '', 'TOO_LONG', `record has ${tokens} tokens (limit ${options.maxTokens})`));
        }
      }
      if (options.hashes) [hashA[i], hashB[i]] = recordHash(record);
    }
    flags[i] = f;
  }
  return { count: n, flags, hashA, hashB, problems };
}
