// InferenceSession / infer() through the built @tinyforge/native on a tiny export folder
// (`exportModel` of a random tiny model): fp32 greedy tokens equal the candle Generator's on the
// same model, 8 concurrent requests equal each alone, streaming deltas add up to the text,
// AbortSignal cancels at the next step, coded errors.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Generator, InferenceSession, createTinyModel, infer } from '@tinyforge/native';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportModel } from '../../ts/pipeline/export.js';
import { codeOf } from '../helpers/errors.js';

// One folder for the whole file (the helpers' tempDir is removed after each test).
let dir = '';
let base = '';
let fp32 = '';
let int8 = '';

afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tinyforge-infer-'));
  base = path.join(dir, 'base');
  await createTinyModel(base, { seed: 3 });
  fp32 = path.join(dir, 'fp32');
  int8 = path.join(dir, 'int8');
  await exportModel({ model: base, out: fp32, quantize: 'none', home: path.join(dir, 'home') });
  await exportModel({ model: base, out: int8, home: path.join(dir, 'home') });
}, 120_000);

describe('InferenceSession (tiny export)', () => {
  it('fp32 greedy equals the candle Generator; result fields are consistent', async () => {
    const session = await InferenceSession.load(fp32, { threads: 1 });
    expect(session.info.kvInPlace).toBe(true);
    const gen = await Generator.load(base);
    for (const prompt of ['Once upon a time', [{ role: 'user', content: 'Name a colour.' }]]) {
      const want = await gen.generate(prompt, { maxTokens: 20 });
      const got = await session.generate(prompt, { maxTokens: 20, topLogprobs: 3 });
      expect(got.tokens).toEqual(want.tokens);
      expect(got.text).toBe(want.text);
      expect(got.usage.promptTokens).toBe(want.promptTokens);
      expect(got.usage.promptTokens).toBe(session.countTokens(prompt));
      expect(got.usage.completionTokens).toBe(got.tokens.length);
      expect(got.logprobs).toHaveLength(got.tokens.length);
      expect(got.topLogprobs.every((t, i) => t.length === 3 && t[0]!.logprob >= got.logprobs[i]! - 1e-6)).toBe(true);
      expect(got.confidence).toBeGreaterThan(0);
      expect(got.confidence).toBeLessThanOrEqual(1);
    }
    session.close();
    expect(await codeOf(session.generate('closed', { maxTokens: 2 }))).toBe('SESSION_CLOSED');
  });

  it('concurrent requests give each one its own answer; stream deltas add up to the text', async () => {
    const session = await InferenceSession.load(int8, { threads: 1, slots: 4, prefillChunk: 4 });
    const prompts = Array.from({ length: 8 }, (_, i) => `request ${i}: ${'more words '.repeat(i)}`);
    const alone = [];
    for (const p of prompts) alone.push(await session.generate(p, { maxTokens: 16, chatTemplate: false }));
    const together = await Promise.all(prompts.map((p) => session.generate(p, { maxTokens: 16, chatTemplate: false })));
    expect(together.map((g) => g.tokens)).toEqual(alone.map((g) => g.tokens));
    const it = session.stream(prompts[3]!, { maxTokens: 16, chatTemplate: false });
    let text = '';
    let deltas = 0;
    let r = await it.next();
    while (!r.done) {
      text += r.value.text ?? '';
      deltas++;
      r = await it.next();
    }
    expect(text).toBe(alone[3]!.text);
    expect(r.value.tokens).toEqual(alone[3]!.tokens);
    expect(deltas).toBeGreaterThanOrEqual(alone[3]!.tokens.length);
    session.close();
  });

  it('an AbortSignal stops a long generation at the next step', async () => {
    const session = await InferenceSession.load(int8, { threads: 1 });
    const controller = new AbortController();
    let seen = 0;
    const result = await session.generate(
      'tell me everything',
      { maxTokens: 2000, temperature: 1, seed: 1 },
      {
        signal: controller.signal,
        onDelta: () => {
          seen++;
          if (seen === 3) controller.abort();
        },
      }
    );
    expect(result.finishReason).toBe('cancelled');
    expect(result.tokens.length).toBeLessThan(50);
    const pre = await session.generate('x', { maxTokens: 50 }, { signal: AbortSignal.abort() });
    expect(pre.finishReason).toBe('cancelled');
    session.close();
  });

  it('infer() caches the session per folder; coded errors', async () => {
    const a = await infer(int8, 'hello', { maxTokens: 5, threads: 1 });
    const b = await infer(int8, 'hello', { maxTokens: 5 });
    expect(b.tokens).toEqual(a.tokens);
    expect(await codeOf(infer(path.join(int8, 'missing'), 'x'))).toBe('NOT_FOUND');
    const session = await InferenceSession.load(int8, { threads: 1 });
    expect(codeOf(() => session.submit('x', { maxTokens: 0 }, () => undefined))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(session.generate('x', { temperature: -1 }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(session.generate('word '.repeat(5000), { maxTokens: 4 }))).toBe('INVALID_ARGUMENT');
    session.close();
  });
});
