// The model binding (createTinyModel, modelInfo, modelLogits) through the built @tinyforge/native,
// checked against the HF transformers references committed in crates/model/tests/data (made by
// make_reference.py there).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createTinyModel, modelInfo, modelLogits } from '@tinyforge/native';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';
import { smollm2GgufPath } from '../helpers/models.js';
import { tempDir } from '../helpers/tmp.js';
import { codeOf } from '../helpers/errors.js';

const DATA = path.join(ROOT, 'crates/model/tests/data');

const argmax = (xs: Float32Array): number => xs.reduce((best, x, i) => (x > xs[best]! ? i : best), 0);

describe('createTinyModel / modelLogits', () => {
  it('is deterministic for a seed and differs across seeds', async () => {
    const [a, b, c] = [tempDir(), tempDir(), tempDir()];
    const made = await createTinyModel(a, { seed: 11 });
    expect(made).toEqual({ path: a, parameters: 106_816 });
    await createTinyModel(b, { seed: 11 });
    await createTinyModel(c, { seed: 12 });
    const ids = Uint32Array.from([1, 300, 17, 42, 2]);
    const [la, lb, lc] = await Promise.all([modelLogits(a, ids), modelLogits(b, ids), modelLogits(c, ids)]);
    expect(la).toBeInstanceOf(Float32Array);
    expect(la.length).toBe(512);
    expect(Array.from(la)).toEqual(Array.from(lb));
    expect(Array.from(la)).not.toEqual(Array.from(lc));
    expect(readFileSync(path.join(a, 'model.safetensors')).equals(readFileSync(path.join(b, 'model.safetensors')))).toBe(true);
  });

  it('honours the shape options', async () => {
    const dir = tempDir();
    await createTinyModel(dir, {
      layers: 1,
      hidden: 48,
      heads: 6,
      kvHeads: 3,
      vocabSize: 300,
      tieEmbeddings: false,
      trainingText: 'abc abc abd 123\n'.repeat(50),
    });
    const info = modelInfo(dir);
    expect(info).toMatchObject({
      format: 'hf',
      numHiddenLayers: 1,
      hiddenSize: 48,
      intermediateSize: 96,
      numAttentionHeads: 6,
      numKeyValueHeads: 3,
      headDim: 8,
      vocabSize: 300,
      tieWordEmbeddings: false,
    });
    expect((await modelLogits(dir, Uint32Array.from([5]))).length).toBe(300);
  });

  it('matches HF transformers on the committed tiny model', async () => {
    const ref = JSON.parse(readFileSync(path.join(DATA, 'reference_tiny.json'), 'utf8')) as { prompts: number[][]; logits: number[][][] };
    for (const [i, prompt] of ref.prompts.entries()) {
      const got = await modelLogits(path.join(DATA, 'tiny'), Uint32Array.from(prompt));
      const want = ref.logits[i]!.at(-1)!;
      // Same tolerance as crates/model/tests/parity.rs: f32 on both sides, only summation order differs.
      const maxDiff = Math.max(...want.map((w, j) => Math.abs(w - got[j]!)));
      expect(maxDiff).toBeLessThan(1e-5);
    }
  });
});

describe('errors', () => {
  it('codes missing models, bad ids, missing tensors and bad options', async () => {
    expect(await codeOf(modelLogits('/nonexistent/model', Uint32Array.from([1])))).toBe('MODEL_NOT_FOUND');
    expect(() => modelInfo('/nonexistent/model')).toThrow(expect.objectContaining({ code: 'MODEL_NOT_FOUND' }));
    const dir = tempDir();
    await createTinyModel(dir);
    expect(await codeOf(modelLogits(dir, Uint32Array.from([512])))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(modelLogits(dir, new Uint32Array(0)))).toBe('INVALID_ARGUMENT');

    const cfgPath = path.join(dir, 'config.json');
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8'));
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, num_hidden_layers: 3 }));
    const err = await modelLogits(dir, Uint32Array.from([1])).catch((e: Error & { code: string }) => e);
    expect((err as { code: string }).code).toBe('WEIGHTS_MISSING');
    expect((err as Error).message).toContain('model.layers.2.');

    writeFileSync(cfgPath, '{"hidden_size": 64,');
    expect(() => modelInfo(dir)).toThrow(expect.objectContaining({ code: 'MODEL_CONFIG' }));
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, rope_scaling: { type: 'yarn', factor: 4 } }));
    expect(() => modelInfo(dir)).toThrow(expect.objectContaining({ code: 'MODEL_CONFIG' }));

    const notGguf = path.join(tempDir(), 'x.gguf');
    writeFileSync(notGguf, 'not a gguf file');
    expect(() => modelInfo(notGguf)).toThrow(expect.objectContaining({ code: 'GGUF_INVALID' }));
    expect(await codeOf(createTinyModel(tempDir(), { vocabSize: 100 }))).toBe('INVALID_ARGUMENT');
  });
});

describe('SmolLM2-135M-Instruct (Q4_1 GGUF)', () => {
  it('loads and predicts the same next token as transformers', async () => {
    const gguf = await smollm2GgufPath();
    expect(modelInfo(gguf)).toMatchObject({
      format: 'gguf',
      numHiddenLayers: 30,
      hiddenSize: 576,
      numKeyValueHeads: 3,
      vocabSize: 49152,
      tieWordEmbeddings: true,
      parameters: 134_515_008,
    });
    const ref = JSON.parse(readFileSync(path.join(DATA, 'reference_smollm2.json'), 'utf8')) as {
      cases: { text: string; ids: number[]; top_ids: number[]; top_logits: number[] }[];
    };
    const capital = ref.cases[0]!;
    const logits = await modelLogits(gguf, Uint32Array.from(capital.ids));
    expect(argmax(logits)).toBe(capital.top_ids[0]);
    // Tolerance of crates/model/tests/parity.rs (same dequantized weights, f32 order differs).
    for (const [k, id] of capital.top_ids.entries()) expect(Math.abs(logits[id]! - capital.top_logits[k]!)).toBeLessThan(1e-3);
  }, 120_000);
});
