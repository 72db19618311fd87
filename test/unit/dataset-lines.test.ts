// The streaming line reader: line numbers and content survive any chunking, including UTF-8
// characters split across chunk boundaries; over-long lines are skipped, not buffered.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OVERLONG_LINE, readLineBatches } from '../../ts/dataset/lines.js';
import { tempDir } from '../helpers/tmp.js';

async function readAll(file: string, options = {}): Promise<{ line: number; text: string }[]> {
  const out: { line: number; text: string }[] = [];
  for await (const b of readLineBatches(file, options))
    b.lines.forEach((text, i) => {
      out.push({ line: b.firstLine + i, text });
    });
  return out;
}

describe('readLineBatches', () => {
  it('gives the same lines and numbers for every chunk size, multibyte text included', async () => {
    const lines = ['{"input":"héllo wörld","output":"ok"}', '', 'ünïcödé → 日本語 🎉🎉', 'x'.repeat(300), 'last'];
    const file = path.join(tempDir(), 'l.jsonl');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const expected = lines.map((text, i) => ({ line: i + 1, text }));
    for (const chunkBytes of [1, 2, 3, 7, 64, 65536]) {
      expect(await readAll(file, { chunkBytes }), `chunk ${chunkBytes}`).toEqual(expected);
    }
  });

  it('replaces over-long lines with OVERLONG_LINE and keeps counting', async () => {
    const file = path.join(tempDir(), 'long.jsonl');
    writeFileSync(file, `short\n${'y'.repeat(5000)}\nafter\n${'z'.repeat(5000)}`);
    const got = await readAll(file, { chunkBytes: 64, maxLineChars: 1000 });
    expect(got).toEqual([
      { line: 1, text: 'short' },
      { line: 2, text: OVERLONG_LINE },
      { line: 3, text: 'after' },
      { line: 4, text: OVERLONG_LINE },
    ]);
  });
});
