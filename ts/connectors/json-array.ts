// A JSON file holding an array of records. JSON.parse needs the whole text, so this is for
// moderate files: above MAX_JSON_BYTES it refuses and points to JSONL, which streams.
import { readFile, stat } from 'node:fs/promises';
import { ForgeError } from '../errors.js';
import { checkFile, type ColumnMapping, normalizeRow, settle } from './normalize.js';
import type { CommonOptions, SourceRecord } from './types.js';

export const MAX_JSON_BYTES = 256 * 1024 * 1024;

export interface JsonArrayOptions extends CommonOptions, ColumnMapping {}

export async function* readJsonArray(path: string, options: JsonArrayOptions = {}): AsyncGenerator<SourceRecord> {
  await checkFile(path);
  const { size } = await stat(path);
  if (size > MAX_JSON_BYTES) {
    throw new ForgeError(
      'INPUT_TOO_LARGE',
      `${path} is ${(size / 2 ** 20).toFixed(0)} MiB; JSON arrays are parsed whole (limit ${MAX_JSON_BYTES / 2 ** 20} MiB)`,
      {
        suggestion: 'convert it to JSONL (one record per line), which streams',
      }
    );
  }
  let value: unknown;
  try {
    value = JSON.parse((await readFile(path, 'utf8')).replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new ForgeError('INVALID_DATA', `${path}: invalid JSON (${(err as Error).message})`, {
      suggestion: 'check the file with a JSON linter, or use JSONL',
    });
  }
  // A `{ "data": [...] }` wrapper is common in exports; accept it, nothing deeper.
  const wrapped = value as { data?: unknown; records?: unknown };
  const items = Array.isArray(value)
    ? value
    : Array.isArray(wrapped?.data)
      ? wrapped.data
      : Array.isArray(wrapped?.records)
        ? wrapped.records
        : undefined;
  if (!items) {
    throw new ForgeError('INVALID_DATA', `${path}: expected a JSON array of records`, {
      suggestion: 'wrap the records in [ ... ], or use JSONL',
    });
  }
  for (const [index, item] of (items as unknown[]).entries()) {
    const record = settle(normalizeRow(item as Record<string, unknown>, options), { kind: 'file', path, index }, options);
    if (record) yield record;
  }
}
