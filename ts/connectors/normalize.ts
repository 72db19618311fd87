// Turns a loose object (a JSON line, a CSV row, a database row) into one of the three record
// schemas. With a column mapping the named columns are used; without one, common column names are
// recognised. Every failure is a reason string, so connectors can either throw it with a location
// (file:line, table key) or collect it when skipping invalid records.
import { stat } from 'node:fs/promises';
import { ForgeError } from '../errors.js';
import { type ChatMessage, type DataRecord, ROLES } from '../dataset/record.js';
import type { CommonOptions, Provenance, SourceRecord } from './types.js';
import { describeSource } from './types.js';

export interface ColumnMapping {
  inputCol?: string;
  outputCol?: string;
  textCol?: string;
  /** Column holding a JSON array of `{role, content}` (or an array, for JSON sources). */
  messagesCol?: string;
}

const INPUT_NAMES = ['input', 'prompt', 'question', 'instruction', 'query'];
const OUTPUT_NAMES = ['output', 'completion', 'answer', 'response'];
const TEXT_NAMES = ['text', 'content', 'body'];

export type Normalized = { record: DataRecord } | { reason: string };

function asText(value: unknown, field: string): string | { reason: string } {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  if (value === null || value === undefined) return { reason: `field "${field}" is missing` };
  return { reason: `field "${field}" must be a string, got ${Array.isArray(value) ? 'array' : typeof value}` };
}

function messages(value: unknown, field: string): ChatMessage[] | { reason: string } {
  let list = value;
  if (typeof list === 'string') {
    try {
      list = JSON.parse(list);
    } catch {
      return { reason: `field "${field}" is not valid JSON` };
    }
  }
  if (!Array.isArray(list) || list.length === 0) return { reason: `field "${field}" must be a non-empty array` };
  const out: ChatMessage[] = [];
  for (const [i, m] of list.entries()) {
    const msg = m as { role?: unknown; content?: unknown };
    if (typeof msg !== 'object' || msg === null) return { reason: `${field}[${i}] must be an object` };
    if (typeof msg.role !== 'string' || !(ROLES as readonly string[]).includes(msg.role)) {
      return { reason: `${field}[${i}].role must be one of system, user, assistant, tool` };
    }
    if (typeof msg.content !== 'string') return { reason: `${field}[${i}].content must be a string` };
    out.push({ role: msg.role as ChatMessage['role'], content: msg.content });
  }
  return out;
}

const pick = (row: Record<string, unknown>, names: string[]) => names.find((n) => n in row);

export function normalizeRow(row: Record<string, unknown>, mapping: ColumnMapping = {}): Normalized {
  if (typeof row !== 'object' || row === null || Array.isArray(row)) {
    return { reason: `expected an object, got ${Array.isArray(row) ? 'array' : row === null ? 'null' : typeof row}` };
  }
  const messagesCol = mapping.messagesCol ?? (mapping.inputCol || mapping.textCol ? undefined : 'messages' in row ? 'messages' : undefined);
  if (messagesCol) {
    if (!(messagesCol in row)) return { reason: `column "${messagesCol}" is missing` };
    const m = messages(row[messagesCol], messagesCol);
    return Array.isArray(m) ? { record: { messages: m } } : m;
  }
  const textCol = mapping.textCol ?? (mapping.inputCol || mapping.outputCol ? undefined : pickText(row));
  if (textCol) {
    const text = asText(row[textCol], textCol);
    return typeof text === 'string' ? { record: { text } } : text;
  }
  const inputCol = mapping.inputCol ?? pick(row, INPUT_NAMES);
  const outputCol = mapping.outputCol ?? pick(row, OUTPUT_NAMES);
  if (!inputCol || !outputCol) {
    const have = Object.keys(row).slice(0, 8).join(', ');
    return { reason: `no input/output, messages or text fields (has: ${have || 'nothing'})` };
  }
  const input = asText(row[inputCol], inputCol);
  if (typeof input !== 'string') return input;
  const output = asText(row[outputCol], outputCol);
  if (typeof output !== 'string') return output;
  // A pair's optional system prompt travels with it (the schema's one optional field).
  return { record: typeof row.system === 'string' ? { system: row.system, input, output } : { input, output } };
}

// `text` wins only when there is no input/output pair: a row with both is a pair with a note.
function pickText(row: Record<string, unknown>): string | undefined {
  if (pick(row, INPUT_NAMES) && pick(row, OUTPUT_NAMES)) return undefined;
  return pick(row, TEXT_NAMES);
}

export function invalidData(source: Provenance, reason: string): ForgeError {
  return new ForgeError('INVALID_DATA', `${describeSource(source)}: ${reason}`, {
    suggestion: 'fix the record, map the right columns (--input-col/--output-col/--text-col), or pass --skip-invalid',
  });
}

/**
 * The one place a connector decides what to do with a row: yield it, skip it (with a reason), or
 * throw INVALID_DATA naming where it is.
 */
export function settle(normalized: Normalized, source: Provenance, options: CommonOptions): SourceRecord | undefined {
  if ('record' in normalized) return { ...normalized.record, source };
  return skipOrThrow(source, normalized.reason, options);
}

export function skipOrThrow(source: Provenance, reason: string, options: CommonOptions): undefined {
  if (!options.skipInvalid) throw invalidData(source, reason);
  options.onSkip?.({ source, reason });
  return undefined;
}

/** A coded error instead of a bare ENOENT when a reader is called on a path that is not a file. */
export async function checkFile(path: string): Promise<void> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) {
    throw new ForgeError('NOT_FOUND', `no such file: ${path}`, { suggestion: 'check the path' });
  }
}
