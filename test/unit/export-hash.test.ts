// The export's base digest must be the one training records (crates/train manifest.rs), or an
// export of a base and a run on that base would point at different registry rows.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createTinyModel, train } from '@tinyforge/native';
import { describe, expect, it } from 'vitest';
import { baseSha256 } from '../../ts/pipeline/export-hash.js';
import { tempDir } from '../helpers/tmp.js';

describe('baseSha256', () => {
  it('equals the SHA-256 the trainer records for an HF folder, and changes with any hashed file', async () => {
    const dir = tempDir();
    const base = path.join(dir, 'base');
    await createTinyModel(base, { seed: 9 });
    const data = path.join(dir, 'data.jsonl');
    writeFileSync(data, `${JSON.stringify({ input: 'a question?', output: 'an answer.' })}\n`.repeat(4));
    await train({ base, data, out: path.join(dir, 'run'), maxSteps: 1, evalSplit: 0 });
    const manifest = JSON.parse(readFileSync(path.join(dir, 'run/tinyforge.json'), 'utf8')) as { base: { sha256: string } };
    const digest = await baseSha256(base);
    expect(digest).toBe(manifest.base.sha256);
    // generation_config.json is not part of the digest; tokenizer_config.json is.
    writeFileSync(path.join(base, 'generation_config.json'), '{}');
    expect(await baseSha256(base)).toBe(digest);
    writeFileSync(path.join(base, 'tokenizer_config.json'), '{}');
    expect(await baseSha256(base)).not.toBe(digest);
  });
});
