// `dedupFile`: keeps the first copy of each record and drops later ones, streaming, with 64-bit
// hashes of the canonical record (exact) or of its normalized text (see canonical.ts). Lines that
// are not valid records are kept unless repeated verbatim (validation is a separate step).
import { existsSync } from 'node:fs';
import { ForgeError } from '../errors.js';
import { lineHash, recordHash } from './canonical.js';
import { SeenHashes } from './hash.js';
import { OVERLONG_LINE, readLineBatches } from './lines.js';
import { checkLine } from './check-record.js';
import { isBlank } from './record.js';
import { LineWriter, assertDistinct } from './writer.js';

export interface DedupResult {
  records: number;
  kept: number;
  removed: number;
  mode: 'exact' | 'normalized';
}

export async function dedupFile(file: string, options: { out: string; normalized?: boolean }): Promise<DedupResult> {
  if (!existsSync(file)) throw new ForgeError('NOT_FOUND', `${file} does not exist`, { suggestion: 'check the path to the JSONL file' });
  assertDistinct(file, options.out);
  const normalized = options.normalized ?? false;
  const seen = new SeenHashes();
  const out = new LineWriter(options.out);
  let records = 0;
  let removed = 0;
  try {
    for await (const { lines, firstLine } of readLineBatches(file)) {
      const keep: string[] = [];
      for (let i = 0; i < lines.length; i++) {
        const text = lines[i]!;
        if (text === OVERLONG_LINE) {
          throw new ForgeError('INVALID_DATA', `${file}:${firstLine + i}: line too long to copy`, {
            suggestion: 'run `foremforge data validate` and fix the file first',
          });
        }
        if (isBlank(text)) continue;
        records++;
        const record = checkLine(text, firstLine + i).record;
        const [a, b] = record ? recordHash(record, normalized) : lineHash(text.trim(), normalized);
        if (seen.add(a, b, firstLine + i) === 0) keep.push(text);
        else removed++;
      }
      await out.write(keep);
    }
    await out.close();
  } catch (err) {
    await out.abort();
    throw err;
  }
  return { records, kept: records - removed, removed, mode: normalized ? 'normalized' : 'exact' };
}
