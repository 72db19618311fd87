// What every Engine must do, as a reusable suite: `describeEngineContract(name, load)` registers
// the checks for one implementation. engine-candle.test.ts runs it on the candle engine; the ONNX
// Runtime engine gets the same file with its own loader (plus its streaming/cancellation checks,
// which the candle engine cannot pass).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DoneEvent, Engine, EngineEvent, EnginePrompt, SamplingParams } from '../../ts/serve/engine.js';

export const GREEDY: SamplingParams = {
  maxTokens: 12,
  temperature: 0,
  topP: 1,
  topK: 0,
  minP: 0,
  repetitionPenalty: 1,
  frequencyPenalty: 0,
  presencePenalty: 0,
  seed: 0,
  stop: [],
  topLogprobs: 0,
};

export async function collect(
  engine: Engine,
  prompt: EnginePrompt,
  params: Partial<SamplingParams> = {},
  signal = new AbortController().signal
) {
  const events: EngineEvent[] = [];
  for await (const e of engine.generate({ prompt, params: { ...GREEDY, ...params } }, signal)) events.push(e);
  const done = events.at(-1) as DoneEvent;
  const deltas = events.filter((e) => e.type === 'delta');
  return { events, done, text: deltas.map((d) => d.text).join(''), tokens: deltas.flatMap((d) => d.tokens) };
}

const TEXT: EnginePrompt = { kind: 'text', text: 'Once upon a time' };
const CHAT: EnginePrompt = {
  kind: 'messages',
  messages: [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Name a colour.' },
  ],
};

export function describeEngineContract(name: string, load: () => Promise<{ engine: Engine; cleanup: () => Promise<void> | void }>): void {
  describe(`Engine contract: ${name}`, () => {
    let engine: Engine;
    let cleanup: () => Promise<void> | void = () => undefined;

    beforeAll(async () => {
      ({ engine, cleanup } = await load());
    });
    afterAll(async () => {
      await engine?.close();
      await cleanup();
    });

    it('info is complete and sane', () => {
      const { info } = engine;
      expect(info.id).not.toBe('');
      expect(info.contextLength).toBeGreaterThan(0);
      expect(info.maxConcurrency).toBeGreaterThanOrEqual(1);
      expect(info.maxTopLogprobs).toBeGreaterThanOrEqual(0);
      expect(info.loadSeconds).toBeGreaterThanOrEqual(0);
    });

    it('ends with exactly one done event; usage matches countTokens and the tokens yielded', async () => {
      for (const prompt of [TEXT, CHAT]) {
        const { events, done, tokens } = await collect(engine, prompt);
        expect(events.filter((e) => e.type === 'done')).toHaveLength(1);
        expect(done.type).toBe('done');
        expect(done.usage.promptTokens).toBe(engine.countTokens(prompt));
        expect(done.usage.completionTokens).toBe(tokens.length);
        expect(done.usage.completionTokens).toBeLessThanOrEqual(12);
        if (done.finishReason === 'length') expect(done.usage.completionTokens).toBe(12);
        for (const t of tokens) expect(t.logprob).toBeLessThanOrEqual(0);
        const expected = tokens.length > 0 ? Math.exp(tokens.reduce((s, t) => s + t.logprob, 0) / tokens.length) : 0;
        expect(done.confidence).toBeCloseTo(expected, 9);
      }
    });

    it('greedy and seeded sampling are deterministic; different seeds can differ', async () => {
      const a = await collect(engine, TEXT);
      const b = await collect(engine, TEXT);
      expect(b.text).toBe(a.text);
      const sampled = await Promise.all([1, 1, 2, 3, 4].map((seed) => collect(engine, TEXT, { temperature: 1, seed, maxTokens: 16 })));
      expect(sampled[1]?.text).toBe(sampled[0]?.text);
      expect(new Set(sampled.map((s) => s.text)).size).toBeGreaterThan(1);
    });

    it('stop strings end the text before them with finishReason stop', async () => {
      const full = await collect(engine, TEXT, { maxTokens: 24 });
      const stop = full.text.slice(4, 6);
      expect(stop).toHaveLength(2);
      const cut = await collect(engine, TEXT, { maxTokens: 24, stop: [stop] });
      expect(cut.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
      expect(cut.done.finishReason).toBe('stop');
    });

    it('an aborted signal yields no event', async () => {
      await expect(collect(engine, TEXT, {}, AbortSignal.abort())).rejects.toBeDefined();
      const controller = new AbortController();
      const events: EngineEvent[] = [];
      const run = (async () => {
        for await (const e of engine.generate({ prompt: TEXT, params: { ...GREEDY, maxTokens: 200 } }, controller.signal)) events.push(e);
      })();
      controller.abort();
      await run.catch(() => undefined);
      expect(events.some((e) => e.type === 'done')).toBe(false);
    });
  });
}
