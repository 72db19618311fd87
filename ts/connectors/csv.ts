// CSV and TSV with a header row. csv-parse handles quoting (embedded commas, quotes, newlines) and
// the BOM; iconv-lite decodes the bytes first so latin1/windows-1252 and UTF-16 exports work.
// Streams: rows are parsed as the file is read.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { parse } from 'csv-parse';
import iconv from 'iconv-lite';
import { ForgeError } from '../errors.js';
import { checkFile, type ColumnMapping, normalizeRow, settle } from './normalize.js';
import type { CommonOptions, SourceRecord } from './types.js';

export interface CsvOptions extends CommonOptions, ColumnMapping {
  /** Defaults to a tab for .tsv files, a comma otherwise. */
  delimiter?: string;
  /** Any encoding iconv-lite knows: utf8 (default), utf16le, latin1, windows-1252, ... */
  encoding?: string;
}

// A byte-order mark is definitive (it overrides --encoding); without one, --encoding decides, else
// UTF-8. (Latin-1 cannot be told from UTF-8 reliably by sniffing, so it must be named.)
async function bomEncoding(path: string): Promise<string | undefined> {
  const handle = await open(path, 'r');
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(3), 0, 3, 0);
    if (bytesRead >= 2 && buffer[0] === 0xff && buffer[1] === 0xfe) return 'utf16le';
    if (bytesRead >= 2 && buffer[0] === 0xfe && buffer[1] === 0xff) return 'utf16be';
    if (bytesRead === 3 && buffer[0] === 0xef && buffer[1] === 0xbb && buffer[2] === 0xbf) return 'utf8';
    return undefined;
  } finally {
    await handle.close();
  }
}

// csv-parse counts lines up to a record's end; provenance names where it starts, so subtract the
// newlines inside quoted fields (the raw text also carries skipped blank lines before it).
function startLine(raw: string, endLine: number): number {
  const body = raw.replace(/^[\r\n]+/, '').replace(/[\r\n]+$/, '');
  let newlines = 0;
  for (const ch of body) if (ch === '\n') newlines += 1;
  return endLine - newlines;
}

export async function* readCsv(path: string, options: CsvOptions = {}): AsyncGenerator<SourceRecord> {
  await checkFile(path);
  if (options.encoding !== undefined && !iconv.encodingExists(options.encoding)) {
    throw new ForgeError('INVALID_ARGUMENT', `unknown encoding "${options.encoding}"`, {
      suggestion: 'use utf8, utf16le, latin1 or windows-1252',
    });
  }
  const encoding = (await bomEncoding(path)) ?? options.encoding ?? 'utf8';
  const delimiter = options.delimiter ?? (/\.tsv$/i.test(path) ? '\t' : ',');
  const parser = parse({
    columns: true,
    bom: true,
    delimiter,
    info: true,
    raw: true,
    skip_empty_lines: true,
    // With --skip-invalid a malformed row (bad quoting, wrong column count) is reported and
    // parsing goes on; without it the first one stops the run with its line number.
    skip_records_with_error: options.skipInvalid === true,
  });
  parser.on('skip', (err: { message: string; lines?: number }) => {
    options.onSkip?.({ source: { kind: 'file', path, line: err.lines ?? 0 }, reason: err.message });
  });
  // iconv's decodeStream strips a BOM for utf8 and utf16 already; csv-parse's `bom` is the backstop.
  const file = createReadStream(path);
  const decoder = iconv.decodeStream(encoding);
  file.on('error', (err) => parser.destroy(err));
  file.pipe(decoder).pipe(parser);
  try {
    for await (const row of parser as AsyncIterable<{ record: Record<string, unknown>; raw: string; info: { lines: number } }>) {
      const source = { kind: 'file' as const, path, line: startLine(row.raw, row.info.lines) };
      const record = settle(normalizeRow(row.record, options), source, options);
      if (record) yield record;
    }
  } catch (err) {
    if (err instanceof ForgeError) throw err;
    const e = err as { code?: string; lines?: number; message: string };
    if (e.code?.startsWith('CSV_')) {
      throw new ForgeError('INVALID_DATA', `${path}:${e.lines ?? '?'}: ${e.message}`, {
        suggestion: 'check quoting and the delimiter (--delimiter), or the encoding (--encoding)',
      });
    }
    throw err;
  } finally {
    file.destroy();
    parser.destroy();
  }
}
