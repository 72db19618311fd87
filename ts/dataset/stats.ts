// `datasetStats`: counts by kind, character lengths and (with a tokenizer) token lengths of a
// JSONL file, in one streaming pass. Lengths are kept as a growable Uint32Array (4 bytes per
// record) so percentiles are exact; records that do not pass checkRecord are only counted.
import { ForgeError } from '../errors.js';
import { OVERLONG_LINE, readLineBatches } from './lines.js';
import { checkLine } from './check-record.js';
import { type RecordKind, isBlank } from './record.js';
import { type NativeTokenizer, TokenCounter } from './tokens.js';
import { existsSync } from 'node:fs';

export interface LengthStats {
  count: number;
  total: number;
  min: number;
  max: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
}

export interface HistogramBucket {
  /** Inclusive lower bound. */
  from: number;
  /** Exclusive upper bound; null for the last, open bucket. */
  to: number | null;
  count: number;
}

export interface DatasetStats {
  file: string;
  records: number;
  /** Lines that are not a usable record (bad JSON, wrong shape). */
  invalid: number;
  byKind: Record<RecordKind, number>;
  chars: LengthStats;
  tokens?: LengthStats & {
    histogram: HistogramBucket[];
    /** Whether records were formatted with the base model's chat template. */
    chatTemplate: boolean;
    /** Records longer than maxSeqLen tokens (when given). */
    overMaxSeqLen?: number;
  };
}

class Lengths {
  private data = new Uint32Array(1024);
  count = 0;
  total = 0;

  push(n: number): void {
    if (this.count === this.data.length) {
      const next = new Uint32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.count++] = n;
    this.total += n;
  }

  values(): Uint32Array {
    return this.data.subarray(0, this.count);
  }

  stats(): LengthStats {
    const sorted = this.values().slice().sort();
    const at = (q: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
    return {
      count: this.count,
      total: this.total,
      min: sorted.length ? sorted[0]! : 0,
      max: sorted.length ? sorted[sorted.length - 1]! : 0,
      mean: this.count ? Math.round((this.total / this.count) * 10) / 10 : 0,
      p50: at(0.5),
      p90: at(0.9),
      p99: at(0.99),
    };
  }
}

/** Power-of-two buckets: [0,32), [32,64), ... [4096,8192), [8192, ∞). */
export function tokenHistogram(values: Uint32Array): HistogramBucket[] {
  const edges = [0, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192];
  const buckets: HistogramBucket[] = edges.map((from, i) => ({ from, to: edges[i + 1] ?? null, count: 0 }));
  for (const v of values) {
    let i = edges.length - 1;
    while (i > 0 && v < edges[i]!) i--;
    buckets[i]!.count++;
  }
  return buckets;
}

export async function datasetStats(file: string, options: { tokenizer?: NativeTokenizer; maxSeqLen?: number } = {}): Promise<DatasetStats> {
  if (!existsSync(file)) throw new ForgeError('NOT_FOUND', `${file} does not exist`, { suggestion: 'check the path to the JSONL file' });
  const counter = options.tokenizer ? new TokenCounter(options.tokenizer) : undefined;
  const chars = new Lengths();
  const tokens = new Lengths();
  const byKind: Record<RecordKind, number> = { pair: 0, chat: 0, text: 0 };
  let records = 0;
  let invalid = 0;
  for await (const { lines, firstLine } of readLineBatches(file)) {
    for (let i = 0; i < lines.length; i++) {
      const text = lines[i]!;
      if (text !== OVERLONG_LINE && isBlank(text)) continue;
      records++;
      if (text === OVERLONG_LINE) {
        invalid++;
        continue;
      }
      const checked = checkLine(text, firstLine + i);
      if (!checked.record || !checked.kind) {
        invalid++;
        continue;
      }
      byKind[checked.kind]++;
      chars.push(checked.chars);
      if (counter) tokens.push(counter.count(checked.record));
    }
  }
  const out: DatasetStats = { file, records, invalid, byKind, chars: chars.stats() };
  if (counter) {
    out.tokens = { ...tokens.stats(), histogram: tokenHistogram(tokens.values()), chatTemplate: counter.usesChatTemplate };
    if (options.maxSeqLen !== undefined) {
      const limit = options.maxSeqLen;
      out.tokens.overMaxSeqLen = tokens.values().reduce((n, v) => n + (v > limit ? 1 : 0), 0);
    }
  }
  return out;
}
