// Checks one JSONL line against the record schema (./README.md, "The record schema") and reports
// every problem as data, never throws. crates/train/src/data/record.rs implements the same rules
// for training; test/fixtures/records/schema-cases.json pins both, case by case.
import { type Problem, type Severity, problem } from './problems.js';
import { type DataRecord, ROLES, type RecordKind, isBlank } from './record.js';

export interface CheckedRecord {
  /** The kind its keys claim; undefined when none or several do. */
  kind: RecordKind | undefined;
  /** The record when it has no error (it may still be too long: see check-lines.ts). */
  record: DataRecord | undefined;
  /** Total characters of the text fields. */
  chars: number;
  problems: Problem[];
}

export function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

// An escaped lone surrogate parses in JSON.parse but not in serde_json, and cannot be encoded as
// UTF-8 for the tokenizer: both sides call it bad JSON. The escape test keeps the walk off
// ordinary lines.
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;
const LONE_SURROGATE = /\p{Cs}/u;

function hasLoneSurrogate(v: unknown): boolean {
  if (typeof v === 'string') return LONE_SURROGATE.test(v);
  if (Array.isArray(v)) return v.some(hasLoneSurrogate);
  if (v !== null && typeof v === 'object') {
    return Object.entries(v).some(([k, x]) => LONE_SURROGATE.test(k) || hasLoneSurrogate(x));
  }
  return false;
}

/** Parses and checks one line (without its line end). */
export function checkLine(text: string, line: number): CheckedRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return rejected(problem(line, '', 'BAD_JSON', `not valid JSON: ${(err as Error).message}`));
  }
  if (SURROGATE_ESCAPE.test(text) && hasLoneSurrogate(value)) {
    return rejected(problem(line, '', 'BAD_JSON', 'not valid JSON: a \\u escape is a lone UTF-16 surrogate'));
  }
  return checkRecord(value, line);
}

function rejected(p: Problem): CheckedRecord {
  return { kind: undefined, record: undefined, chars: 0, problems: [p] };
}

/** Checks one parsed JSON value as a record. */
export function checkRecord(value: unknown, line: number): CheckedRecord {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return rejected(problem(line, '', 'NOT_AN_OBJECT', `a record must be a JSON object, got ${typeName(value)}`));
  }
  const obj = value as Record<string, unknown>;
  // Presence decides the kind, whatever the value (`"messages": null` still claims "chat").
  const kinds: RecordKind[] = [];
  if ('input' in obj || 'output' in obj) kinds.push('pair');
  if ('messages' in obj) kinds.push('chat');
  if ('text' in obj) kinds.push('text');
  if (kinds.length === 0) return rejected(problem(line, '', 'UNKNOWN_SCHEMA', 'expected "input"+"output", "messages" or "text"'));
  if (kinds.length > 1)
    return rejected(problem(line, '', 'AMBIGUOUS_SCHEMA', `record mixes the ${kinds.join(' and ')} schemas; use exactly one`));
  const kind = kinds[0]!;
  const problems: Problem[] = [];
  let chars = 0;
  if (kind === 'pair') {
    // An empty input is unusual but legal (a fixed prompt); an empty output teaches nothing.
    chars += checkString(obj, 'input', 'input', line, problems, 'warning');
    chars += checkString(obj, 'output', 'output', line, problems, 'error');
    chars += checkSystem(obj.system, line, problems);
    unknownFields(obj, PAIR_FIELDS, '', line, problems);
  } else if (kind === 'text') {
    chars += checkString(obj, 'text', 'text', line, problems, 'error');
    unknownFields(obj, TEXT_FIELDS, '', line, problems);
  } else {
    chars += checkMessages(obj.messages, line, problems);
    unknownFields(obj, CHAT_FIELDS, '', line, problems);
  }
  const ok = !problems.some((p) => p.severity === 'error');
  return { kind, record: ok ? (obj as unknown as DataRecord) : undefined, chars, problems };
}

const PAIR_FIELDS = new Set(['input', 'output', 'system']);
const CHAT_FIELDS = new Set(['messages']);
const TEXT_FIELDS = new Set(['text']);
const MESSAGE_FIELDS = new Set(['role', 'content']);

/** A string field that must be present; a blank one is EMPTY with the given severity. */
function checkString(obj: Record<string, unknown>, key: string, field: string, line: number, out: Problem[], blank: Severity): number {
  const v = obj[key];
  if (v === undefined) out.push(problem(line, field, 'MISSING_FIELD', `"${key}" is missing`));
  else if (typeof v !== 'string') out.push(problem(line, field, 'WRONG_TYPE', `"${key}" must be a string, got ${typeName(v)}`));
  else {
    if (isBlank(v)) out.push(problem(line, field, 'EMPTY', `"${key}" is empty`, blank));
    return v.length;
  }
  return 0;
}

function checkSystem(v: unknown, line: number, out: Problem[]): number {
  if (v === undefined) return 0;
  if (typeof v !== 'string') {
    out.push(problem(line, 'system', 'WRONG_TYPE', `"system" must be a string, got ${typeName(v)}`));
    return 0;
  }
  if (isBlank(v))
    out.push(problem(line, 'system', 'EMPTY', '"system" is blank and is left out (the template\'s default applies)', 'warning'));
  return v.length;
}

// Sorted by code point (UTF-8 byte order), as Rust sorts strings; `sort()` alone compares UTF-16
// units, which differs past U+FFFF.
const byCodePoint = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** Keys outside the schema: warned (sorted) and ignored; keys starting with "_" are metadata. */
function unknownFields(obj: Record<string, unknown>, known: ReadonlySet<string>, prefix: string, line: number, out: Problem[]): void {
  let unknown: string[] | undefined;
  for (const key in obj) {
    if (!known.has(key) && !key.startsWith('_')) (unknown ??= []).push(key);
  }
  if (!unknown) return;
  if (unknown.length > 1) unknown.sort(byCodePoint);
  for (const key of unknown) {
    out.push(problem(line, `${prefix}${key}`, 'UNKNOWN_FIELD', `"${key}" is not part of the schema and is ignored`));
  }
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
  let roleProblem = false;
  messages.forEach((m: unknown, i) => {
    const at = `messages[${i}]`;
    if (m === null || typeof m !== 'object' || Array.isArray(m)) {
      out.push(problem(line, at, 'WRONG_TYPE', `a message must be an object, got ${typeName(m)}`));
      return;
    }
    const msg = m as Record<string, unknown>;
    const role = msg.role;
    let valid = false;
    if (role === undefined) out.push(problem(line, `${at}.role`, 'MISSING_FIELD', '"role" is missing'));
    else if (typeof role !== 'string')
      out.push(problem(line, `${at}.role`, 'WRONG_TYPE', `"role" must be a string, got ${typeName(role)}`));
    else if (!(ROLES as readonly string[]).includes(role)) {
      out.push(problem(line, `${at}.role`, 'UNKNOWN_ROLE', `unknown role "${role}" (expected ${ROLES.join(', ')})`));
    } else valid = true;
    roleProblem ||= !valid;
    assistant ||= role === 'assistant';
    // Only the reply must say something: a blank prompt turn is legal (warned), as in pairs.
    chars += checkString(msg, 'content', `${at}.content`, line, out, role === 'assistant' ? 'error' : 'warning');
    unknownFields(msg, MESSAGE_FIELDS, `${at}.`, line, out);
  });
  // A chat whose roles are wrong gets that error, not a second one about the assistant.
  if (!assistant && !roleProblem)
    out.push(problem(line, 'messages', 'NO_ASSISTANT', 'no "assistant" message: nothing to learn from this chat'));
  return chars;
}
