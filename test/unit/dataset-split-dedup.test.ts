// split: seeded, deterministic, exact eval size, a partition of the input in its original order.
// dedup: exact (canonical fields) and normalized text.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dedupFile, normalizeText, seededRandom, splitFile } from '../../ts/dataset/index.js';
import { tempDir } from '../helpers/tmp.js';

const readLines = (f: string) => readFileSync(f, 'utf8').split('\n').filter(Boolean);

function records(n: number): string {
  const dir = tempDir();
  const file = path.join(dir, 'data.jsonl');
  const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ input: `question ${i}`, output: `answer ${i}` }));
  writeFileSync(file, `${lines.join('\n')}\n\n`);
  return file;
}

describe('splitFile', () => {
  it('holds out exactly round(n * fraction) records, partitions the input and keeps order', async () => {
    const file = records(1000);
    const dir = path.dirname(file);
    const r = await splitFile(file, {
      evalFraction: 0.1,
      seed: 42,
      trainOut: path.join(dir, 't.jsonl'),
      evalOut: path.join(dir, 'e.jsonl'),
    });
    expect(r).toMatchObject({ records: 1000, train: 900, eval: 100 });
    const train = readLines(path.join(dir, 't.jsonl'));
    const evalSet = readLines(path.join(dir, 'e.jsonl'));
    expect(train).toHaveLength(900);
    expect(evalSet).toHaveLength(100);
    const index = (l: string) => Number(JSON.parse(l).input.split(' ')[1]);
    const all = [...train, ...evalSet].map(index).sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    const evalIdx = evalSet.map(index);
    expect(evalIdx).toEqual([...evalIdx].sort((a, b) => a - b));
    // Spread over the file, not a block at one end.
    expect(Math.min(...evalIdx)).toBeLessThan(100);
    expect(Math.max(...evalIdx)).toBeGreaterThan(900);
  });

  it('is deterministic for a seed and differs across seeds', async () => {
    const file = records(200);
    const dir = path.dirname(file);
    const run = async (seed: number, tag: string) => {
      const evalOut = path.join(dir, `e-${tag}.jsonl`);
      await splitFile(file, { evalFraction: 0.25, seed, trainOut: path.join(dir, `t-${tag}.jsonl`), evalOut });
      return readFileSync(evalOut, 'utf8');
    };
    const a = await run(7, 'a');
    expect(await run(7, 'b')).toBe(a);
    expect(await run(8, 'c')).not.toBe(a);
  });

  it('rejects bad fractions, tiny files and writing over the input', async () => {
    const file = records(10);
    const out = path.join(path.dirname(file), 'o.jsonl');
    await expect(splitFile(file, { evalFraction: 1.5, seed: 1, trainOut: out, evalOut: `${out}2` })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(splitFile(file, { evalFraction: 0.1, seed: 1, trainOut: file, evalOut: out })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(splitFile(records(1), { evalFraction: 0.5, seed: 1, trainOut: out, evalOut: `${out}2` })).rejects.toMatchObject({
      code: 'INVALID_DATA',
    });
  });

  it('seededRandom is uniform enough', () => {
    const r = seededRandom(123);
    const buckets = new Array(10).fill(0);
    for (let i = 0; i < 100_000; i++) buckets[Math.floor(r() * 10)]++;
    for (const b of buckets) expect(Math.abs(b - 10_000)).toBeLessThan(500);
  });
});

describe('dedupFile', () => {
  function file(lines: object[]): string {
    const f = path.join(tempDir(), 'd.jsonl');
    writeFileSync(f, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
    return f;
  }

  it('drops exact repeats (key order, spacing and _source do not matter) and keeps the first', async () => {
    const f = file([
      { input: 'Hello, World!', output: 'hi' },
      { output: 'hi', input: 'Hello, World!', _source: 'b.csv:9' },
      { input: 'hello world', output: 'hi' },
      {
        messages: [
          { role: 'user', content: 'x' },
          { role: 'assistant', content: 'y' },
        ],
      },
      {
        messages: [
          { role: 'user', content: 'x' },
          { role: 'assistant', content: 'y' },
        ],
      },
      {
        messages: [
          { role: 'system', content: 'x' },
          { role: 'assistant', content: 'y' },
        ],
      },
      { input: 'Hello, World!hi', output: '' },
    ]);
    const out = path.join(path.dirname(f), 'out.jsonl');
    const r = await dedupFile(f, { out });
    expect(r).toEqual({ records: 7, kept: 5, removed: 2, mode: 'exact' });
    const kept = readLines(out).map((l) => JSON.parse(l));
    expect(kept[0]).toEqual({ input: 'Hello, World!', output: 'hi' });
    expect(kept).toHaveLength(5);
  });

  it('normalized mode folds case, whitespace and punctuation', async () => {
    const f = file([
      { input: 'Hello, World!', output: 'Hi.' },
      { input: '  hello   world ', output: 'hi' },
      { input: 'HELLO WORLD?', output: 'HI!' },
      { input: 'hello there', output: 'hi' },
    ]);
    const out = path.join(path.dirname(f), 'out.jsonl');
    expect(await dedupFile(f, { out, normalized: true })).toEqual({ records: 4, kept: 2, removed: 2, mode: 'normalized' });
    expect(normalizeText(' Ça   VA, très—bien! ')).toBe('ça va très bien');
  });
});
