// Validation on worker threads must give exactly what the in-process path gives: same problems
// in the same order with the same line numbers, same summary, across job boundaries (jobs are
// ~256 KiB, the file here ~3 MB), with a BOM, CRLF, blank and over-long lines. Workers need the
// compiled JavaScript, so this test runs the built dist/ (npm run build:ts).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import type * as Dataset from '../../ts/dataset/index.js';
import { ROOT } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const dist = (): Promise<typeof Dataset> => import(pathToFileURL(path.join(ROOT, 'dist/ts/dataset/index.js')).href);

function mixedFile(): string {
  const file = path.join(tempDir(), 'big.jsonl');
  const lines: string[] = [];
  for (let i = 0; i < 12_000; i++) {
    const r = i % 97;
    if (r === 5) lines.push('{"input": "cut off');
    else if (r === 11) lines.push(JSON.stringify({ input: `q${i}`, output: '' }));
    else if (r === 13) lines.push('');
    else if (r === 17)
      lines.push(JSON.stringify({ input: 'q1', output: 'same answer '.repeat(20) })); // duplicates
    else if (r === 19)
      lines.push(JSON.stringify({ text: `t${i}` })); // mixed schema
    else if (r === 23)
      lines.push(JSON.stringify({ input: `q${i}`, output: 'long '.repeat(200) })); // over maxChars
    else if (i === 6000) lines.push(`{"input": "${'x'.repeat(3000)}", "output": "too long a line"}`);
    else lines.push(JSON.stringify({ input: `question ${i} ünïcödé 日本`, output: `answer ${i} `.repeat(1 + (i % 40)) }));
  }
  writeFileSync(file, `\ufeff${lines.join('\r\n')}\n`);
  return file;
}

describe('validateFile on worker threads', () => {
  it('gives the same problems and summary as the in-process path', async () => {
    const { validateFile } = await dist();
    const file = mixedFile();
    const options = { maxChars: 800, maxLineChars: 2000 };
    const seq = await validateFile(file, { ...options, workers: 0 });
    expect(seq.summary.bytes).toBeGreaterThan(8 * 256 * 1024);
    expect(seq.summary.problemCounts).toMatchObject({
      BAD_JSON: 124,
      EMPTY: 124,
      DUPLICATE: 123,
      MIXED_SCHEMA: 124,
      TOO_LONG: 124,
      LINE_TOO_LONG: 1,
    });
    for (const workers of [1, 2, 3]) {
      const par = await validateFile(file, { ...options, workers });
      expect(par.summary, `workers ${workers}`).toEqual(seq.summary);
      expect(par.problems, `workers ${workers}`).toEqual(seq.problems);
    }
  });
});
