// What is wrong with a record or a file, as data: a code, the JSON path of the field, a reason and
// a severity. Errors make a record unusable; warnings are worth knowing but training goes on.

export type ProblemCode =
  | 'BAD_JSON'
  | 'NOT_AN_OBJECT'
  | 'UNKNOWN_SCHEMA'
  | 'AMBIGUOUS_SCHEMA'
  | 'MISSING_FIELD'
  | 'WRONG_TYPE'
  | 'EMPTY'
  | 'UNKNOWN_ROLE'
  | 'NO_ASSISTANT'
  | 'UNKNOWN_FIELD'
  | 'TOO_LONG'
  | 'LINE_TOO_LONG'
  | 'DUPLICATE'
  | 'MIXED_SCHEMA';

export type Severity = 'error' | 'warning';

export interface Problem {
  /** 1-based line number in the file. */
  line: number;
  /** JSON path of the field (`output`, `messages[2].role`), '' for the whole record. */
  field: string;
  code: ProblemCode;
  reason: string;
  severity: Severity;
}

/** Codes that are always warnings. EMPTY is either: see check-record.ts. */
export const WARNING_CODES: ReadonlySet<ProblemCode> = new Set<ProblemCode>(['DUPLICATE', 'UNKNOWN_FIELD', 'MIXED_SCHEMA']);

export function problem(line: number, field: string, code: ProblemCode, reason: string, severity?: Severity): Problem {
  return { line, field, code, reason, severity: severity ?? (WARNING_CODES.has(code) ? 'warning' : 'error') };
}
