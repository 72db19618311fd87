// What every connector yields: a record of the one schema (pair, chat or text; the types and
// rules live in ts/dataset/record.ts and ts/dataset/README.md) plus where it came from, so a bad
// example in a trained model can be traced back to a file line, a PDF page, a table row or a
// Google Doc heading.
import type { DataRecord } from '../dataset/record.js';

/** Where a record came from. Never holds credentials (no connection strings, no tokens). */
export type Provenance =
  | {
      kind: 'file';
      path: string;
      /** 1-based line where the record (or chunk) starts: JSONL, CSV, TXT, Markdown. */
      line?: number;
      /** 1-based page: PDF. */
      page?: number;
      /** Nearest heading above the chunk: Markdown, DOCX. */
      section?: string;
      /** 0-based index in a JSON array. */
      index?: number;
    }
  | { kind: 'sqlite'; path: string; table?: string; query?: string; key: string | number }
  | { kind: 'postgres'; table?: string; query?: string; key: string | number }
  | { kind: 'gdocs'; documentId: string; title?: string; heading?: string };

export type SourceRecord = DataRecord & { source: Provenance };

/** A record a connector could not use. Collected (not thrown) when `skipInvalid` is set. */
export interface SkippedRecord {
  source: Provenance;
  reason: string;
}

/** Counts tokens for chunking. The default approximates (chars / 4); pass a real tokenizer's count. */
export type TokenCounter = (text: string) => number;

export const approxTokens: TokenCounter = (text) => Math.ceil(text.length / 4);

/** Options every connector understands. */
export interface CommonOptions {
  /** Skip records that cannot be normalized (reported through `onSkip`) instead of failing. */
  skipInvalid?: boolean;
  onSkip?: (skipped: SkippedRecord) => void;
  /** Token budget per `{text}` chunk for documents (TXT, Markdown, PDF, DOCX, Google Docs). */
  maxTokens?: number;
  countTokens?: TokenCounter;
}

export const DEFAULT_MAX_TOKENS = 512;

/** Where a record came from, as people write it: `data.jsonl:12`, `book.pdf p.3`, `sqlite faq#7`. */
export function describeSource(source: Provenance): string {
  switch (source.kind) {
    case 'file':
      if (source.line !== undefined) return `${source.path}:${source.line}`;
      if (source.page !== undefined) return `${source.path} (page ${source.page})`;
      if (source.index !== undefined) return `${source.path}[${source.index}]`;
      return source.section ? `${source.path} (${source.section})` : source.path;
    case 'sqlite':
    case 'postgres':
      return `${source.kind} ${source.table ?? 'query'} key=${source.key}`;
    case 'gdocs':
      return `gdocs ${source.documentId}${source.heading ? ` (${source.heading})` : ''}`;
  }
}

/**
 * One JSONL line. The schema keys stay at the top level so the file is a valid training set
 * as-is; provenance goes under `_source` (on by default: the dataset tools ignore keys starting
 * with `_`, and `ingest --no-provenance` leaves it out).
 */
export function toJsonLine(record: SourceRecord, options: { provenance?: boolean } = {}): string {
  // Copying keys in a loop is ~2x faster than rest/spread here, which shows on million-line ingests.
  const out: Record<string, unknown> = {};
  for (const key in record) if (key !== 'source') out[key] = record[key as keyof SourceRecord];
  if (options.provenance !== false) out._source = record.source;
  return JSON.stringify(out);
}
