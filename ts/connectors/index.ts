// Connectors: every source of training data is an async iterator of normalized records
// (`SourceRecord`, see ./types.ts), so the dataset tools and `foremforge ingest` consume files,
// databases and Google Docs the same way, streaming.
export * from './types.js';
export { redact, redactUrl, registerSecret, scrubError } from './redact.js';
export { normalizeRow, type ColumnMapping } from './normalize.js';
export { Chunker, splitOversize, type Block, type Chunk } from './chunk.js';
export { readJsonl, type JsonlOptions } from './jsonl.js';
export { readJsonArray, MAX_JSON_BYTES } from './json-array.js';
export { readCsv, type CsvOptions } from './csv.js';
export { readText, type TextOptions } from './text.js';
export { readPdf } from './pdf.js';
export { readDocx } from './docx.js';
export { readFiles, SUPPORTED_EXTENSIONS, type FileOptions } from './files.js';
export { readSqlite, type SqliteOptions } from './sqlite.js';
export { readPostgres, type PostgresOptions } from './postgres.js';
export { readGoogleDocs, documentRecords, HttpDocsApi, MockDocsApi, type DocsApi, type GDocsOptions } from './gdocs/index.js';
export { writeJsonl, type WriteStats, type WriteOptions } from './write.js';

import { readFiles, type FileOptions } from './files.js';
import { type GDocsOptions, readGoogleDocs } from './gdocs/index.js';
import { type PostgresOptions, readPostgres } from './postgres.js';
import { type SqliteOptions, readSqlite } from './sqlite.js';
import type { SourceRecord } from './types.js';

export type SourceSpec =
  | ({ from: 'file'; path: string } & FileOptions)
  | ({ from: 'sqlite'; path: string } & SqliteOptions)
  | ({ from: 'postgres' } & PostgresOptions)
  | ({ from: 'gdocs' } & GDocsOptions);

/** One entry point for every connector. */
export function openSource(spec: SourceSpec): AsyncGenerator<SourceRecord> {
  switch (spec.from) {
    case 'file':
      return readFiles(spec.path, spec);
    case 'sqlite':
      return readSqlite(spec.path, spec);
    case 'postgres':
      return readPostgres(spec);
    case 'gdocs':
      return readGoogleDocs(spec);
  }
}
