// Reads an eval file for `foremforge eval`: JSONL records of the training schema
// (ts/dataset/README.md), each turned into a prompt (the messages the model sees) and the
// reference answer. A pair record asks `input` (after `system`) and expects `output`; a chat
// record asks every turn before its last assistant turn and expects that turn. The answer's
// essential words, when given, are in `_key` (a `_` field is metadata, so `data validate` accepts
// the file without warnings) or `key`. Every bad line is reported at once, by line and field.
import { existsSync, statSync } from 'node:fs';
import { type ChatMessage, OVERLONG_LINE, checkLine, readLineBatches } from '../dataset/index.js';
import { ForgeError } from '../errors.js';

export interface EvalCase {
  /** 1-based line in the eval file. */
  line: number;
  messages: ChatMessage[];
  reference: string;
  key?: string;
}

/** Bad lines listed in one error before the rest are summarised. */
const SHOWN_PROBLEMS = 10;

function keyOf(value: Record<string, unknown>, line: number, problems: string[]): string | undefined {
  const field = '_key' in value ? '_key' : 'key' in value ? 'key' : undefined;
  if (field === undefined) return undefined;
  const key = value[field];
  if (typeof key !== 'string' || key.trim() === '') {
    problems.push(`line ${line}: ${field}: must be a non-empty string (the answer's essential words)`);
    return undefined;
  }
  return key;
}

function toCase(text: string, line: number, problems: string[]): EvalCase | undefined {
  const checked = checkLine(text, line);
  const errors = checked.problems.filter((p) => p.severity === 'error');
  if (errors.length > 0 || checked.record === undefined) {
    for (const p of errors) problems.push(`line ${line}: ${p.field === '' ? 'record' : p.field}: ${p.reason} [${p.code}]`);
    return undefined;
  }
  const record = checked.record;
  const key = keyOf(JSON.parse(text) as Record<string, unknown>, line, problems);
  if ('text' in record) {
    problems.push(`line ${line}: record: a {"text"} record has no question and answer; use {"input","output"} or {"messages"}`);
    return undefined;
  }
  if ('messages' in record) {
    let last = record.messages.length - 1;
    while (last > 0 && record.messages[last]!.role !== 'assistant') last--;
    const prompt = record.messages.slice(0, last);
    if (!prompt.some((m) => m.role === 'user')) {
      problems.push(`line ${line}: messages: no user turn before the last assistant turn`);
      return undefined;
    }
    return { line, messages: prompt, reference: record.messages[last]!.content, ...(key === undefined ? {} : { key }) };
  }
  const messages: ChatMessage[] = [];
  if (record.system !== undefined && record.system.trim() !== '') messages.push({ role: 'system', content: record.system });
  messages.push({ role: 'user', content: record.input });
  return { line, messages, reference: record.output, ...(key === undefined ? {} : { key }) };
}

/** All records of `file`, or one INVALID_DATA error naming every bad line and field. */
export async function readEvalCases(file: string): Promise<EvalCase[]> {
  if (!existsSync(file) || !statSync(file).isFile()) {
    throw new ForgeError('NOT_FOUND', `eval data file not found: ${file}`, { suggestion: 'pass --data path/to/eval.jsonl' });
  }
  const cases: EvalCase[] = [];
  const problems: string[] = [];
  for await (const batch of readLineBatches(file)) {
    batch.lines.forEach((text, i) => {
      if (text === OVERLONG_LINE) {
        problems.push(`line ${batch.firstLine + i}: record: the line is too long to read`);
        return;
      }
      if (text.trim() === '') return;
      const c = toCase(text, batch.firstLine + i, problems);
      if (c) cases.push(c);
    });
  }
  if (problems.length > 0) {
    const shown = problems.slice(0, SHOWN_PROBLEMS).map((p) => `  ${file}:${p.slice('line '.length)}`);
    const more = problems.length > SHOWN_PROBLEMS ? [`  ... and ${problems.length - SHOWN_PROBLEMS} more`] : [];
    throw new ForgeError('INVALID_DATA', `${problems.length} bad eval record(s):\n${[...shown, ...more].join('\n')}`, {
      suggestion:
        'each line needs {"input","output"} (or {"messages"} ending with an assistant turn); check it with `foremforge data validate`',
    });
  }
  if (cases.length === 0) {
    throw new ForgeError('INVALID_DATA', `${file} has no records to evaluate`, {
      suggestion: 'add {"input","output","_key"?} lines',
    });
  }
  return cases;
}
