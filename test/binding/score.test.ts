// Generator.score / scoreAnswers on a tiny random model: the summed NLL equals −Σ log softmax of
// each next token computed from `modelLogits` (an independent full forward per prefix), an
// answer's score equals the difference of two text scores (the rule `foremforge eval` uses for an
// export's plain-text scorer), and bad input is a coded error.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Generator, Tokenizer, createTinyModel, modelLogits } from '@tinyforge/native';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { differenceScorer } from '../../ts/pipeline/eval-loss.js';
import { codeOf } from '../helpers/errors.js';

let dir: string;
let base: string;
let generator: Generator;
let tokenizer: Tokenizer;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'tinyforge-score-'));
  base = path.join(dir, 'base');
  await createTinyModel(base, { seed: 9 });
  generator = await Generator.load(base);
  tokenizer = Tokenizer.fromFile(path.join(base, 'tokenizer.json'));
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function logSoftmaxAt(logits: Float32Array, id: number): number {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  return logits[id]! - max - Math.log(sum);
}

describe('Generator.score', () => {
  it('sums -log softmax of every next token, as a full forward pass per prefix gives it', async () => {
    const text = 'The river takes the shorter path.';
    const ids = tokenizer.encode(text, { addSpecialTokens: false });
    expect(ids.length).toBeGreaterThan(3);
    let want = 0;
    for (let j = 1; j < ids.length; j++) want -= logSoftmaxAt(await modelLogits(base, ids.slice(0, j)), ids[j]!);
    const [s] = await generator.score([text]);
    expect(s!.tokens).toBe(ids.length - 1);
    expect(s!.truncated).toBe(false);
    expect(s!.nll).toBeCloseTo(want, 3);
  });

  it('scores each text on its own, in order', async () => {
    const texts = ['Bread is old.', 'A kettle boils water quickly.'];
    const both = await generator.score(texts);
    const alone = [(await generator.score([texts[0]!]))[0]!, (await generator.score([texts[1]!]))[0]!];
    expect(both).toEqual(alone);
    expect(both[0]!.tokens).not.toBe(both[1]!.tokens);
  });

  it('cuts a text longer than the context window and says so', async () => {
    const [s] = await generator.score(['word '.repeat(3000)]);
    expect(s!.truncated).toBe(true);
    expect(s!.tokens).toBe(2047); // tiny models have a 2048-token context
  }, 120_000);

  it('rejects an empty text with INVALID_ARGUMENT', async () => {
    expect(await codeOf(generator.score(['ok', '']))).toBe('INVALID_ARGUMENT');
  });
});

describe('Generator.scoreAnswers', () => {
  const chat = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'What does it cost?' },
    { role: 'assistant', content: 'It costs 42 dollars.' },
  ];

  it('equals the full chat scored minus its prompt scored (the export rule)', async () => {
    const [direct] = await generator.scoreAnswers([chat]);
    const viaTexts = differenceScorer(
      (texts) => generator.score(texts),
      (messages, generationPrompt) => tokenizer.applyChatTemplate(messages, { addGenerationPrompt: generationPrompt })
    );
    const [diff] = await viaTexts.scoreAnswers([chat]);
    // The answer, its end-of-turn marker and the newline after it.
    const answerIds = tokenizer.encode('It costs 42 dollars.<|im_end|>\n', { addSpecialTokens: false });
    expect(direct!.tokens).toBe(answerIds.length);
    expect(diff!.tokens).toBe(direct!.tokens);
    expect(diff!.nll).toBeCloseTo(direct!.nll, 3);
  });

  it('scores only the last assistant turn of a multi-turn chat', async () => {
    const longer = [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello there, how can I help?' }, ...chat.slice(1)];
    const [s] = await generator.scoreAnswers([longer]);
    const answerIds = tokenizer.encode('It costs 42 dollars.<|im_end|>\n', { addSpecialTokens: false });
    expect(s!.tokens).toBe(answerIds.length);
  });

  it('rejects a chat that does not end with an assistant turn', async () => {
    expect(await codeOf(generator.scoreAnswers([chat.slice(0, 2)]))).toBe('INVALID_ARGUMENT');
  });
});
