// `splitFile`: a seeded train/eval split that streams the file twice. Pass 1 counts the records
// (n); pass 2 picks exactly k = round(n * evalFraction) of them for eval with selection sampling
// (Knuth's Algorithm S: keep record t with probability (k - picked) / (n - t)), so every k-subset
// is equally likely, memory is O(1), and the same file + seed + fraction always gives the same
// split. Lines are copied verbatim in their original order; blank lines are dropped.
import { existsSync } from 'node:fs';
import { ForgeError } from '../errors.js';
import { OVERLONG_LINE, readLineBatches } from './lines.js';
import { isBlank } from './record.js';
import { LineWriter, assertDistinct } from './writer.js';

/** sfc32: small, fast, well-distributed 32-bit PRNG; seeded through splitmix32. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  const splitmix = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = 1;
  return () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

export interface SplitOptions {
  evalFraction: number;
  seed: number;
  trainOut: string;
  evalOut: string;
}

export interface SplitResult {
  records: number;
  train: number;
  eval: number;
  seed: number;
  evalFraction: number;
  method: 'two-pass selection sampling';
}

const isRecordLine = (s: string) => s === OVERLONG_LINE || !isBlank(s);

export async function splitFile(file: string, options: SplitOptions): Promise<SplitResult> {
  const { evalFraction, seed } = options;
  if (!(evalFraction > 0 && evalFraction < 1)) {
    throw new ForgeError('INVALID_ARGUMENT', `--eval-fraction must be between 0 and 1 (exclusive), got ${evalFraction}`, {
      suggestion: 'use e.g. --eval-fraction 0.1',
    });
  }
  if (!Number.isInteger(seed) || seed < 0)
    throw new ForgeError('INVALID_ARGUMENT', `--seed must be a non-negative integer, got ${seed}`, {
      suggestion: 'use e.g. --seed 42',
    });
  if (!existsSync(file)) throw new ForgeError('NOT_FOUND', `${file} does not exist`, { suggestion: 'check the path to the JSONL file' });
  assertDistinct(file, options.trainOut, options.evalOut);

  let n = 0;
  for await (const { lines } of readLineBatches(file)) for (const l of lines) if (isRecordLine(l)) n++;
  if (n < 2)
    throw new ForgeError('INVALID_DATA', `${file} has ${n} record(s); a split needs at least 2`, { suggestion: 'add more records' });
  const k = Math.min(n - 1, Math.max(1, Math.round(n * evalFraction)));

  const rand = seededRandom(seed);
  const train = new LineWriter(options.trainOut);
  const evalSet = new LineWriter(options.evalOut);
  let t = 0;
  let picked = 0;
  try {
    for await (const { lines, firstLine } of readLineBatches(file)) {
      const toTrain: string[] = [];
      const toEval: string[] = [];
      for (let i = 0; i < lines.length; i++) {
        const l = lines[i]!;
        if (!isRecordLine(l)) continue;
        if (l === OVERLONG_LINE) {
          throw new ForgeError('INVALID_DATA', `${file}:${firstLine + i}: line too long to copy`, {
            suggestion: 'run `foremforge data validate` and fix the file first',
          });
        }
        if ((n - t) * rand() < k - picked) {
          toEval.push(l);
          picked++;
        } else toTrain.push(l);
        t++;
      }
      await train.write(toTrain);
      await evalSet.write(toEval);
    }
    if (t !== n) throw new ForgeError('FILE_CHANGED', `${file} changed while it was being split`, { suggestion: 'run the split again' });
    await train.close();
    await evalSet.close();
  } catch (err) {
    await train.abort();
    await evalSet.abort();
    throw err;
  }
  return { records: n, train: n - k, eval: k, seed, evalFraction, method: 'two-pass selection sampling' };
}
