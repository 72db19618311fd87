// JSONL / NDJSON: one record per line, read line by line so a file of any size streams.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { checkFile, type ColumnMapping, normalizeRow, settle, skipOrThrow } from './normalize.js';
import type { CommonOptions, SourceRecord } from './types.js';

export interface JsonlOptions extends CommonOptions, ColumnMapping {}

export async function* readJsonl(path: string, options: JsonlOptions = {}): AsyncGenerator<SourceRecord> {
  await checkFile(path);
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const raw of lines) {
      line += 1;
      // A UTF-8 BOM on the first line is an editor's artefact, not data.
      const text = (line === 1 ? raw.replace(/^\uFEFF/, '') : raw).trim();
      if (text === '') continue;
      const source = { kind: 'file' as const, path, line };
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        skipOrThrow(source, `invalid JSON (${(err as Error).message})`, options);
        continue;
      }
      const record = settle(normalizeRow(value as Record<string, unknown>, options), source, options);
      if (record) yield record;
    }
  } finally {
    lines.close();
  }
}
