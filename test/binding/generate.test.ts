// generate() / Generator / mergeAdapter() through the built @tinyforge/native: a tiny random
// model (deterministic sampling, greedy == argmax of modelLogits, an adapter trained by train()
// changes the output, the merged folder generates like base + adapter, coded errors) and the
// real SmolLM2-135M-Instruct GGUF answering a chat question.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Generator, Tokenizer, createTinyModel, generate, mergeAdapter, modelLogits, train } from '@tinyforge/native';
import { describe, expect, it } from 'vitest';
import { smollm2GgufPath } from '../helpers/models.js';
import { tempDir } from '../helpers/tmp.js';
import { codeOf } from '../helpers/errors.js';

async function tiny(): Promise<{ dir: string; base: string }> {
  const dir = tempDir();
  const base = path.join(dir, 'base');
  await createTinyModel(base, { seed: 11 });
  return { dir, base };
}

function argmax(xs: Float32Array): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}

describe('generate (tiny model)', () => {
  it('sampling is deterministic for a seed; confidence is a mean probability', async () => {
    const { base } = await tiny();
    const opts = { maxTokens: 12, temperature: 0.9, topK: 40, topP: 0.95, repetitionPenalty: 1.1, seed: 5 };
    const a = await generate(base, 'Hello there', opts);
    const b = await generate(base, 'Hello there', opts);
    expect(b.tokens).toEqual(a.tokens);
    expect(b.text).toBe(a.text);
    expect(a.completionTokens).toBe(a.tokens.length);
    expect(a.promptTokens).toBeGreaterThan(2);
    expect(a.confidence).toBeGreaterThan(0);
    expect(a.confidence).toBeLessThanOrEqual(1);
    const others = await Promise.all([6, 7, 8].map((seed) => generate(base, 'Hello there', { ...opts, seed })));
    expect(others.some((o) => JSON.stringify(o.tokens) !== JSON.stringify(a.tokens))).toBe(true);
  });

  it('greedy decoding equals the argmax of modelLogits over the growing sequence', async () => {
    const { base } = await tiny();
    const g = await generate(base, 'The cat sat on', { maxTokens: 5, chatTemplate: false });
    const ids = Array.from(Tokenizer.fromFile(base).encode('The cat sat on'));
    expect(g.promptTokens).toBe(ids.length);
    for (let step = 0; step < g.tokens.length; step++) {
      const next = argmax(await modelLogits(base, new Uint32Array(ids)));
      expect(next, `step ${step}`).toBe(g.tokens[step]);
      ids.push(next);
    }
    if (g.finishReason === 'eos') expect(argmax(await modelLogits(base, new Uint32Array(ids)))).toBe(2);
    else expect(g.tokens).toHaveLength(5);
  });

  it('an adapter changes the output; the merged folder generates like base + adapter', async () => {
    const { dir, base } = await tiny();
    const data = path.join(dir, 'data.jsonl');
    const rows = Array.from({ length: 8 }, (_, i) => JSON.stringify({ input: `Question ${i}?`, output: `Answer ${i}.` }));
    writeFileSync(data, `${rows.join('\n')}\n`);
    const out = path.join(dir, 'run');
    await train({ base, data, out, maxSteps: 3, batchSize: 2, lr: 2e-2, targetModules: ['q_proj', 'v_proj', 'up_proj'] });
    const adapter = path.join(out, 'adapter');
    const messages = [{ role: 'user', content: 'Question 3?' }];
    const plain = await generate(base, messages, { maxTokens: 6 });
    const tuned = await generate(base, messages, { maxTokens: 6, adapter });
    expect(tuned.tokenProbs[0]).not.toBeCloseTo(plain.tokenProbs[0] ?? 0, 4);

    const merged = await mergeAdapter(base, adapter, path.join(dir, 'merged'));
    expect(merged.path).toBe(path.join(dir, 'merged'));
    const fromMerged = await generate(merged.path, messages, { maxTokens: 6 });
    expect(fromMerged.tokens).toEqual(tuned.tokens);
    expect(fromMerged.text).toBe(tuned.text);
    fromMerged.tokenProbs.forEach((p, i) => {
      expect(p).toBeCloseTo(tuned.tokenProbs[i]!, 4);
    });

    const gen = await Generator.load(base, { adapter });
    const again = await gen.generate(messages, { maxTokens: 6 });
    expect(again.tokens).toEqual(tuned.tokens);
    const [x, y] = await Promise.all([gen.generate('Question 1?', { maxTokens: 4 }), gen.generate('Question 1?', { maxTokens: 4 })]);
    expect(x.tokens).toEqual(y.tokens);
  });

  it('stop strings cut the text', async () => {
    const { base } = await tiny();
    const opts = { maxTokens: 20, temperature: 1, seed: 3 };
    const g = await generate(base, 'abc', opts);
    const printable = g.text.replace(/\s+/g, '');
    expect(printable.length).toBeGreaterThan(4);
    const cutAt = printable.slice(2, 4);
    const s = await generate(base, 'abc', { ...opts, stop: [cutAt] });
    expect(s.finishReason).toBe('stop');
    expect(s.text.includes(cutAt)).toBe(false);
    expect(g.text.startsWith(s.text)).toBe(true);
  });

  it('coded errors', async () => {
    const { dir, base } = await tiny();
    expect(await codeOf(generate(path.join(dir, 'nope'), 'hi'))).toBe('MODEL_NOT_FOUND');
    expect(await codeOf(Generator.load(path.join(dir, 'nope')))).toBe('MODEL_NOT_FOUND');
    expect(await codeOf(generate(base, 'hi', { adapter: path.join(dir, 'no-adapter') }))).toBe('ADAPTER_INVALID');
    writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 2, target_modules: ['q_proj'] }));
    const err = await generate(base, 'hi', { adapter: dir }).catch((e: Error & { code: string }) => e);
    expect((err as { code: string }).code).toBe('ADAPTER_INVALID');
    expect((err as Error).message).toContain('adapter_model.safetensors');
    expect(await codeOf(generate(base, 'hi', { maxTokens: 0 }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(generate(base, 'hi', { temperature: -1 }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(generate(base, [], {}))).toBe('INVALID_ARGUMENT');
    const gen = await Generator.load(base);
    expect(await codeOf(gen.generate('hi', { topP: 2 }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(mergeAdapter(base, path.join(dir, 'none'), path.join(dir, 'm2')))).toBe('ADAPTER_INVALID');
  });
});

describe('generate (SmolLM2-135M-Instruct GGUF)', () => {
  it('answers a short chat question', async () => {
    const gguf = await smollm2GgufPath();
    const gen = await Generator.load(gguf);
    const r = await gen.generate([{ role: 'user', content: 'What is the capital of France? Answer in one word.' }], { maxTokens: 16 });
    expect(r.text.trim().length).toBeGreaterThan(0);
    expect(r.confidence).toBeGreaterThan(0);
    expect(r.confidence).toBeLessThanOrEqual(1);
    expect(r.text).toMatch(/Paris/);
  }, 120_000);
});
