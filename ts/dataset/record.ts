// The one JSONL record schema every connector produces and every trainer reads:
//   {"input": "...", "output": "..."}               an instruction pair  (kind "io")
//   {"messages": [{"role": "...", "content": "..."}]} a chat              (kind "messages")
//   {"text": "..."}                                   plain LM text        (kind "text")
// each with an optional "_source" (where the record came from). checkRecord reports every
// problem of one parsed line as data, never throws.

export type RecordKind = 'io' | 'messages' | 'text';
export const RECORD_KINDS: readonly RecordKind[] = ['io', 'messages', 'text'];
export const ROLES: readonly string[] = ['system', 'user', 'assistant', 'tool'];

export interface ChatMessage {
  role: string;
  content: string;
}

export type DataRecord =
  | { input: string; output: string; _source?: unknown }
  | { messages: ChatMessage[]; _source?: unknown }
  | { text: string; _source?: unknown };

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

/** Errors make a record unusable; warnings are worth knowing but training can go on. */
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

export const WARNING_CODES: ReadonlySet<ProblemCode> = new Set<ProblemCode>(['DUPLICATE', 'UNKNOWN_FIELD']);

export function problem(line: number, field: string, code: ProblemCode, reason: string, severity?: Severity): Problem {
  return { line, field, code, reason, severity: severity ?? (WARNING_CODES.has(code) ? 'warning' : 'error') };
}

export interface CheckedRecord {
  kind: RecordKind | undefined;
  /** The record when its shape is right (it may still have e.g. an over-long problem). */
  record: DataRecord | undefined;
  /** Total characters of the text fields. */
  chars: number;
  problems: Problem[];
}

const KNOWN_FIELDS = new Set(['input', 'output', 'messages', 'text', '_source']);

function kindOf(obj: Record<string, unknown>): { kinds: RecordKind[] } {
  const kinds: RecordKind[] = [];
  if ('input' in obj || 'output' in obj) kinds.push('io');
  if ('messages' in obj) kinds.push('messages');
  if ('text' in obj) kinds.push('text');
  return { kinds };
}

function checkString(
  obj: Record<string, unknown>,
  key: string,
  field: string,
  line: number,
  out: Problem[],
  emptySeverity: Severity = 'error',
): number {
  const v = obj[key];
  if (v === undefined) out.push(problem(line, field, 'MISSING_FIELD', `"${key}" is missing`));
  else if (typeof v !== 'string') out.push(problem(line, field, 'WRONG_TYPE', `"${key}" must be a string, got ${typeName(v)}`));
  else if (v.trim().length === 0) out.push(problem(line, field, 'EMPTY', `"${key}" is empty`, emptySeverity));
  else return v.length;
  return typeof v === 'string' ? v.length : 0;
}

export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** Checks one parsed JSON value as a record. */
export function checkRecord(value: unknown, line: number): CheckedRecord {
  const problems: Problem[] = [];
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    problems.push(problem(line, '', 'NOT_AN_OBJECT', `a record must be a JSON object, got ${typeName(value)}`));
    return { kind: undefined, record: undefined, chars: 0, problems };
  }
  const obj = value as Record<string, unknown>;
  const { kinds } = kindOf(obj);
  if (kinds.length === 0) {
    problems.push(problem(line, '', 'UNKNOWN_SCHEMA', 'expected "input"+"output", "messages" or "text"'));
    return { kind: undefined, record: undefined, chars: 0, problems };
  }
  if (kinds.length > 1) {
    problems.push(problem(line, '', 'AMBIGUOUS_SCHEMA', `record mixes the ${kinds.join(' and ')} schemas; use exactly one`));
    return { kind: undefined, record: undefined, chars: 0, problems };
  }
  for (const key of Object.keys(obj)) {
    if (!KNOWN_FIELDS.has(key)) problems.push(problem(line, key, 'UNKNOWN_FIELD', `"${key}" is not part of the schema and is ignored`));
  }
  const kind = kinds[0]!;
  let chars = 0;
  if (kind === 'io') {
    // An empty input is unusual but legal (a fixed prompt); an empty output teaches nothing.
    chars += checkString(obj, 'input', 'input', line, problems, 'warning');
    chars += checkString(obj, 'output', 'output', line, problems);
  } else if (kind === 'text') {
    chars += checkString(obj, 'text', 'text', line, problems);
  } else {
    chars += checkMessages(obj.messages, line, problems);
  }
  const ok = !problems.some((p) => p.severity === 'error');
  return { kind, record: ok ? (obj as DataRecord) : undefined, chars, problems };
}

function checkMessages(messages: unknown, line: number, out: Problem[]): number {
  if (!Array.isArray(messages)) {
    out.push(problem(line, 'messages', 'WRONG_TYPE', `"messages" must be an array, got ${typeName(messages)}`));
    return 0;
  }
  if (messages.length === 0) {
    out.push(problem(line, 'messages', 'EMPTY', '"messages" is empty'));
    return 0;
  }
  let chars = 0;
  let assistant = false;
  messages.forEach((m: unknown, i) => {
    const at = `messages[${i}]`;
    if (m === null || typeof m !== 'object' || Array.isArray(m)) {
      out.push(problem(line, at, 'WRONG_TYPE', `a message must be an object, got ${typeName(m)}`));
      return;
    }
    const msg = m as Record<string, unknown>;
    if (msg.role === undefined) out.push(problem(line, `${at}.role`, 'MISSING_FIELD', '"role" is missing'));
    else if (typeof msg.role !== 'string') out.push(problem(line, `${at}.role`, 'WRONG_TYPE', `"role" must be a string, got ${typeName(msg.role)}`));
    else if (!ROLES.includes(msg.role)) out.push(problem(line, `${at}.role`, 'UNKNOWN_ROLE', `unknown role "${msg.role}" (expected ${ROLES.join(', ')})`));
    else if (msg.role === 'assistant') assistant = true;
    chars += checkString(msg, 'content', `${at}.content`, line, out);
  });
  if (!assistant && !out.some((p) => p.line === line && p.field.endsWith('.role'))) {
    out.push(problem(line, 'messages', 'NO_ASSISTANT', 'no "assistant" message: nothing to learn from this chat'));
  }
  return chars;
}

/** The chat a record becomes for a chat template (text records have none). */
export function recordMessages(record: DataRecord): ChatMessage[] | undefined {
  if ('messages' in record) return record.messages.map((m) => ({ role: m.role, content: m.content }));
  if ('input' in record) {
    return [
      { role: 'user', content: record.input },
      { role: 'assistant', content: record.output },
    ];
  }
  return undefined;
}

export function recordKind(record: DataRecord): RecordKind {
  return 'messages' in record ? 'messages' : 'input' in record ? 'io' : 'text';
}
