// Writes records to a JSONL file atomically: into a temporary file beside the target, renamed over
// it only when every record is written, so a failed or interrupted ingest never leaves a
// half-written dataset where a good one was. Counts what it wrote for the summary.
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { type RecordKind, recordKind } from '../dataset/record.js';
import { type SourceRecord, toJsonLine } from './types.js';

export interface WriteStats {
  records: number;
  byKind: Record<RecordKind, number>;
  bytes: number;
  seconds: number;
}

export interface WriteOptions {
  /** Keep `_source` provenance on each line. @default true */
  provenance?: boolean;
  /** Called after each record (cheap: the caller decides how often to draw). */
  onRecord?: (stats: WriteStats) => void;
  /** Runs before the rename; throwing here discards the output (e.g. refuse an empty dataset). */
  beforeCommit?: (stats: WriteStats) => void;
  /** Stops between records; the partial output is discarded. */
  signal?: AbortSignal;
}

export async function writeJsonl(records: AsyncIterable<SourceRecord>, out: string, options: WriteOptions = {}): Promise<WriteStats> {
  await mkdir(path.dirname(path.resolve(out)), { recursive: true });
  const tmp = path.join(path.dirname(path.resolve(out)), `.${path.basename(out)}.${process.pid}.${Date.now()}.tmp`);
  const stream = createWriteStream(tmp, { flags: 'wx' });
  const started = performance.now();
  const stats: WriteStats = { records: 0, byKind: { pair: 0, chat: 0, text: 0 }, bytes: 0, seconds: 0 };
  let failed: unknown;
  stream.on('error', (err) => (failed ??= err));
  try {
    for await (const record of records) {
      if (failed) throw failed;
      options.signal?.throwIfAborted();
      const line = `${toJsonLine(record, options)}\n`;
      stats.records += 1;
      stats.byKind[recordKind(record)] += 1;
      stats.bytes += Buffer.byteLength(line);
      // Backpressure: wait for the disk when the buffer is full instead of growing it.
      if (!stream.write(line)) await once(stream, 'drain');
      options.onRecord?.(stats);
    }
    stream.end();
    await once(stream, 'finish');
    if (failed) throw failed;
    options.beforeCommit?.(stats);
    await rename(tmp, out);
  } catch (err) {
    stream.destroy();
    await rm(tmp, { force: true });
    throw err;
  }
  stats.seconds = (performance.now() - started) / 1000;
  return stats;
}
