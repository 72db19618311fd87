// The scoring of `foremforge eval` on known strings: each metric has a case that passes and one
// that must fail, so a broken normalisation or a substring match where a word match is meant
// shows up here.
import { describe, expect, it } from 'vitest';
import {
  answerTokens,
  containsReference,
  exactMatch,
  factRecall,
  normalizeAnswer,
  scoreAnswer,
  summarize,
  tokenF1,
} from '../../ts/pipeline/eval-metrics.js';

describe('normalizeAnswer', () => {
  it('lower-cases, turns punctuation into spaces and collapses whitespace', () => {
    expect(normalizeAnswer("  SkyLedger's   app!\n")).toBe('skyledger s app');
  });
  it('keeps decimal points and drops thousands separators between digits', () => {
    expect(normalizeAnswer('Version 3.8.2.')).toBe('version 3.8.2');
    expect(normalizeAnswer('0.2 mm, 1,200 units, $189.')).toBe('0.2 mm 1200 units 189');
  });
  it('splits e-mail addresses and units into words', () => {
    expect(answerTokens('help@venmoor.no')).toEqual(['help', 'venmoor', 'no']);
    expect(answerTokens('160 km/h')).toEqual(['160', 'km', 'h']);
    expect(answerTokens(' ... ')).toEqual([]);
  });
});

describe('exactMatch', () => {
  it('ignores case and punctuation only', () => {
    expect(exactMatch('The CEO is Ingrid Solheim.', 'the ceo is ingrid solheim')).toBe(1);
    expect(exactMatch('The CEO is Ingrid Solheim, since 2017.', 'The CEO is Ingrid Solheim.')).toBe(0);
  });
});

describe('containsReference', () => {
  it('finds the reference as a contiguous run of whole words', () => {
    expect(containsReference('Sure! Larkspur costs $189. Anything else?', 'Larkspur costs $189')).toBe(1);
    expect(containsReference('Larkspur costs $1890.', 'Larkspur costs $189')).toBe(0);
    expect(containsReference('costs Larkspur $189', 'Larkspur costs $189')).toBe(0);
  });
  it('never matches an empty reference', () => {
    expect(containsReference('anything', '...')).toBe(0);
  });
});

describe('tokenF1', () => {
  it('is 1 for the same words and 0 for none shared', () => {
    expect(tokenF1('Bergen, Norway', 'bergen norway')).toBe(1);
    expect(tokenF1('Oslo', 'Bergen')).toBe(0);
  });
  it('is the harmonic mean of word precision and recall', () => {
    // answer 4 words, reference 2, 2 shared: precision 0.5, recall 1 → F1 2/3.
    expect(tokenF1('it is in Bergen', 'in Bergen')).toBeCloseTo(2 / 3, 12);
  });
  it('counts repeated words once per occurrence in the reference', () => {
    // answer "no no no" vs "no": precision 1/3, recall 1 → 0.5.
    expect(tokenF1('no no no', 'no')).toBeCloseTo(0.5, 12);
  });
  it('scores two empty strings 1 and one empty string 0', () => {
    expect(tokenF1('', '')).toBe(1);
    expect(tokenF1('', 'x')).toBe(0);
  });
});

describe('factRecall', () => {
  it('needs every key word as a whole word, in any order', () => {
    expect(factRecall('It came out in 2019, in April.', 'April 2019')).toBe(1);
    expect(factRecall('It came out in 2019.', 'April 2019')).toBe(0);
    expect(factRecall('The battery lasts 140 days.', '14')).toBe(0);
    expect(factRecall('Write to help@venmoor.no any time.', 'help@venmoor.no')).toBe(1);
    expect(factRecall('The newest firmware is 3.8.2', '3.8.2')).toBe(1);
    expect(factRecall('The newest firmware is 3.8', '3.8.2')).toBe(0);
  });
  it('never counts a key without words', () => {
    expect(factRecall('anything', ' - ')).toBe(0);
  });
});

describe('summarize', () => {
  it('averages every metric and takes fact recall over keyed records only', () => {
    const rows = [
      { scores: scoreAnswer('Larkspur costs $189.', 'Larkspur costs $189.', '189'), confidence: 0.9 },
      { scores: scoreAnswer('It weighs 700 grams.', 'The outdoor unit weighs 740 grams.', '740'), confidence: 0.5 },
      { scores: scoreAnswer('Bergen', 'Bergen', undefined), confidence: 0.4 },
    ];
    const s = summarize(rows);
    expect(s.records).toBe(3);
    expect(s.exactMatch).toBeCloseTo(2 / 3, 12);
    expect(s.contains).toBeCloseTo(2 / 3, 12);
    expect(s.keyed).toBe(2);
    expect(s.recalled).toBe(1);
    expect(s.factRecall).toBeCloseTo(0.5, 12);
    expect(s.meanConfidence).toBeCloseTo(0.6, 12);
    // "it weighs 700 grams" vs "the outdoor unit weighs 740 grams": 2 shared of 4 and 6 → F1 0.4.
    expect(s.f1).toBeCloseTo((1 + 0.4 + 1) / 3, 12);
  });
  it('leaves fact recall undefined when no record has a key', () => {
    expect(summarize([{ scores: scoreAnswer('a', 'a', undefined), confidence: 1 }]).factRecall).toBeUndefined();
  });
});
