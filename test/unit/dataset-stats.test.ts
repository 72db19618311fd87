// datasetStats: counts, exact character percentiles, and token histograms through a tokenizer
// (a word tokenizer here to pin exact numbers; the real one in dataset-tokens.test.ts).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { datasetStats, tokenHistogram } from '../../ts/dataset/index.js';
import { tempDir } from '../helpers/tmp.js';

const words = { encode: (t: string) => t.split(/\s+/).filter(Boolean) };

describe('datasetStats', () => {
  it('counts kinds and character lengths, skipping bad lines', async () => {
    const file = path.join(tempDir(), 's.jsonl');
    const lines = [
      ...Array.from({ length: 10 }, (_, i) => JSON.stringify({ input: 'q'.repeat(i + 1), output: 'a'.repeat(10) })),
      JSON.stringify({ text: 'w '.repeat(40).trim() }),
      'not json',
      JSON.stringify({ input: 'q' }),
    ];
    writeFileSync(file, `${lines.join('\n')}\n`);
    const s = await datasetStats(file);
    expect(s.records).toBe(13);
    expect(s.invalid).toBe(2);
    expect(s.byKind).toEqual({ pair: 10, chat: 0, text: 1 });
    expect(s.chars).toMatchObject({ count: 11, min: 11, max: 79, total: 10 * 10 + 55 + 79, p50: 16 });
    expect(s.tokens).toBeUndefined();
  });

  it('builds a token histogram with the given tokenizer (plain text without a chat template)', async () => {
    const file = path.join(tempDir(), 't.jsonl');
    const lines = [10, 20, 40, 40, 100, 600].map((n, i) => JSON.stringify({ input: `q${i}`, output: 'w '.repeat(n - 1).trim() }));
    writeFileSync(file, `${lines.join('\n')}\n`);
    const s = await datasetStats(file, { tokenizer: words, maxSeqLen: 64 });
    expect(s.tokens!.chatTemplate).toBe(false);
    expect(s.tokens).toMatchObject({ count: 6, min: 10, max: 600, total: 810, overMaxSeqLen: 2 });
    const counts = Object.fromEntries(s.tokens!.histogram.filter((b) => b.count).map((b) => [b.from, b.count]));
    // Each record is its input word plus n-1 output words: 10, 20, 40, 40, 100, 600 tokens.
    expect(counts).toEqual({ 0: 2, 32: 2, 64: 1, 512: 1 });
  });

  it('tokenHistogram uses power-of-two buckets with an open last bucket', () => {
    const h = tokenHistogram(Uint32Array.from([0, 31, 32, 8191, 8192, 100000]));
    expect(h[0]).toEqual({ from: 0, to: 32, count: 2 });
    expect(h[1]).toEqual({ from: 32, to: 64, count: 1 });
    expect(h.at(-2)).toEqual({ from: 4096, to: 8192, count: 1 });
    expect(h.at(-1)).toEqual({ from: 8192, to: null, count: 2 });
  });
});
