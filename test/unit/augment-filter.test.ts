// The rewording filter of `foremforge data augment` (ts/dataset/augment-filter.ts) on strings:
// every drop reason has a case that fires and the clean-up keeps what a rewording says.
import { describe, expect, it } from 'vitest';
import { answerWords, cleanParaphrase, judgeParaphrase, normalizeWording, paraphrasePrompt } from '../../ts/dataset/augment-filter.js';

const Q = 'Where is Venmoor Instruments based?';
const A = 'Venmoor Instruments is based in Bergen, Norway.';

describe('augment filter', () => {
  it('answer words: numbers and names the question does not contain, plus the key', () => {
    expect([...answerWords(Q, A)].sort()).toEqual(['bergen', 'norway']);
    expect([...answerWords('How much does it cost?', 'It costs $189.')]).toEqual(['189']);
    expect(answerWords('Who?', 'The CEO is Ingrid Solheim.', 'Solheim').has('solheim')).toBe(true);
    // The sentence's first word is capitalised by grammar, not a name.
    expect(answerWords('Is it waterproof?', 'Yes, it is rated IP66.').has('yes')).toBe(false);
  });

  it('keeps a good rewording and names why others go', () => {
    const leaks = answerWords(Q, A);
    const seen = new Set([normalizeWording(Q)]);
    expect(judgeParaphrase('In what city is Venmoor Instruments located?', Q, leaks, seen)).toBeUndefined();
    expect(judgeParaphrase('', Q, leaks, seen)).toBe('empty');
    expect(judgeParaphrase('where is venmoor instruments based', Q, leaks, seen)).toBe('duplicate');
    expect(judgeParaphrase('Where?', Q, leaks, seen)).toBe('too-short');
    expect(judgeParaphrase(`${'Where is it that the company '.repeat(5)}?`, Q, leaks, seen)).toBe('too-long');
    expect(judgeParaphrase('Venmoor Instruments is a company in Norway.', Q, leaks, seen)).toBe('not-a-question');
    expect(judgeParaphrase('Is Venmoor Instruments based in Bergen?', Q, leaks, seen)).toBe('leaks-answer');
  });

  it('cleans labels, quotes and trailing lines', () => {
    expect(cleanParaphrase('New question: "Who builds Larkspur?"\nAnswer: Venmoor')).toBe('Who builds Larkspur?');
    expect(cleanParaphrase('  Which firm makes Larkspur?  ')).toBe('Which firm makes Larkspur?');
  });

  it('the prompt shows worked examples and ends with the question', () => {
    const p = paraphrasePrompt(Q);
    expect(p[0]!.role).toBe('system');
    expect(p.filter((m) => m.role === 'assistant').length).toBe(3);
    expect(p.at(-1)!.content.endsWith(Q)).toBe(true);
  });
});
