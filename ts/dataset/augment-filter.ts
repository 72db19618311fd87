// The pure half of `foremforge data augment`: the few-shot prompt that asks the base model for a
// rewording of a question, the clean-up of what it says, and the filter that decides whether a
// rewording is kept (and if not, why). No model here, so every rule is unit-tested on strings
// (test/unit/augment-filter.test.ts).
import type { ChatMessage } from './record.js';

/** Why a generated rewording was not kept. */
export type DropReason = 'empty' | 'duplicate' | 'leaks-answer' | 'too-short' | 'too-long' | 'not-a-question';
export const DROP_REASONS: readonly DropReason[] = ['empty', 'duplicate', 'leaks-answer', 'too-short', 'too-long', 'not-a-question'];

/**
 * Worked examples for the base model. A 135M instruct model asked cold ("reword this") often
 * answers the question instead; three shown rewordings make it reword (measured on the Larkspur
 * set: most generations are questions with this prompt). The questions are about nothing in
 * particular so they lend no facts to the user's data.
 */
const SHOTS: readonly [string, string][] = [
  ['How much does the basic plan cost?', 'What is the price of the basic plan?'],
  ['Who founded the bakery?', 'Which person started the bakery?'],
  ['Where is the factory located?', 'In which town can the factory be found?'],
];

const INSTRUCTION = 'Reword this question. Keep its meaning, use different words, reply with the new question only:';

/** The chat that asks for one rewording of `question`. */
export function paraphrasePrompt(question: string): ChatMessage[] {
  const messages: ChatMessage[] = [{ role: 'system', content: 'You reword questions. You never answer them.' }];
  for (const [q, p] of SHOTS) {
    messages.push({ role: 'user', content: `${INSTRUCTION}\n${q}` }, { role: 'assistant', content: p });
  }
  messages.push({ role: 'user', content: `${INSTRUCTION}\n${question}` });
  return messages;
}

/** The rewording as the model wrote it, minus a label it may prefix, quotes and extra lines. */
export function cleanParaphrase(text: string): string {
  let s = text.trim().split('\n')[0] ?? '';
  s = s.replace(/^(?:new question|reworded question|question|rewording|reworded)\s*:\s*/iu, '');
  s = s.replace(/^["'“”‘’]+|["'“”‘’]+$/gu, '');
  return s.trim();
}

/** Lower case, punctuation to spaces, collapsed: two wordings that differ only so are duplicates. */
export function normalizeWording(s: string): string {
  return s
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim();
}

/**
 * The answer's distinctive words that the question does not already contain: words with a digit
 * ("189", "3.8.2", "07:00") and capitalised words past the sentence's first word (names), plus the
 * words of `key` when the record names one. A rewording that contains one of them gives the
 * answer away, and training on it would teach the model to read the fact off the question.
 */
export function answerWords(question: string, answer: string, key?: string): Set<string> {
  const asked = new Set(normalizeWording(question).split(' '));
  const words = new Set<string>();
  const raw = answer.split(/\s+/u).filter(Boolean);
  raw.forEach((w, i) => {
    const bare = w.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '');
    if (bare === '') return;
    const named = i > 0 && /^\p{Lu}/u.test(bare) && !/[.!?:]$/u.test(raw[i - 1] ?? '');
    if (/\p{N}/u.test(bare) || named) for (const part of normalizeWording(bare).split(' ')) if (part) words.add(part);
  });
  if (key !== undefined) for (const part of normalizeWording(key).split(' ')) if (part) words.add(part);
  for (const w of asked) words.delete(w);
  return words;
}

export interface FilterLimits {
  /** Shortest rewording as a fraction of the original's length in characters. */
  minRatio: number;
  /** Longest rewording as a multiple of the original's length in characters. */
  maxRatio: number;
  /** Longest rewording in characters, whatever the original. */
  maxChars: number;
}

/** A question of 20 characters may be reworded in 8 to 60; nothing past 400 characters. */
export const DEFAULT_LIMITS: FilterLimits = { minRatio: 0.4, maxRatio: 3, maxChars: 400 };

/**
 * Keeps a cleaned rewording or says why not. `seen` holds the normalised original and the
 * rewordings kept so far for this record.
 */
export function judgeParaphrase(
  candidate: string,
  original: string,
  leaks: ReadonlySet<string>,
  seen: ReadonlySet<string>,
  limits: FilterLimits = DEFAULT_LIMITS
): DropReason | undefined {
  const norm = normalizeWording(candidate);
  if (norm === '') return 'empty';
  if (seen.has(norm)) return 'duplicate';
  if (candidate.length < Math.max(4, limits.minRatio * original.length)) return 'too-short';
  if (candidate.length > Math.min(limits.maxChars, Math.max(40, limits.maxRatio * original.length))) return 'too-long';
  if (original.trim().endsWith('?') && !candidate.endsWith('?')) return 'not-a-question';
  for (const w of norm.split(' ')) if (leaks.has(w)) return 'leaks-answer';
  return undefined;
}
