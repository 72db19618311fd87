// The answer-quality metrics of `foremforge eval`, pure functions of strings so they are tested on
// known pairs (test/unit/eval-metrics.test.ts). Normalisation follows SQuAD's evaluation script in
// spirit (lower case, punctuation out, whitespace collapsed) with two changes for product facts:
// punctuation becomes a space instead of vanishing (so "SkyLedger's" keeps the word "skyledger"),
// and a '.' or ',' between digits is a decimal point or thousands separator, not punctuation
// ("0.2" stays "0.2", "1,200" becomes "1200"), so a key such as a version or a price still matches.
// Articles are kept: "a"/"an"/"the" rarely decide a fact, and dropping them hides nothing here.

/** Lower case, digit separators resolved, every other non-letter non-digit a space, collapsed. */
export function normalizeAnswer(text: string): string {
  return (
    text
      .normalize('NFKC')
      .toLowerCase()
      .replace(/(?<=\d),(?=\d{3}\b)/gu, '')
      // A private-use character holds the decimal point while punctuation goes.
      .replace(/(?<=\d)\.(?=\d)/gu, '\uE000')
      .replace(/[^\p{L}\p{N}\uE000]+/gu, ' ')
      .replace(/\uE000/gu, '.')
      .trim()
  );
}

/** The normalised words of `text`. */
export function answerTokens(text: string): string[] {
  const n = normalizeAnswer(text);
  return n === '' ? [] : n.split(' ');
}

/** 1 when the normalised answer equals the normalised reference. */
export function exactMatch(answer: string, reference: string): number {
  return normalizeAnswer(answer) === normalizeAnswer(reference) ? 1 : 0;
}

/** 1 when the reference's words appear in the answer as one contiguous run (normalised). */
export function containsReference(answer: string, reference: string): number {
  const ref = normalizeAnswer(reference);
  if (ref === '') return 0;
  return ` ${normalizeAnswer(answer)} `.includes(` ${ref} `) ? 1 : 0;
}

/** Harmonic mean of word precision and recall, counting repeated words (a bag, as SQuAD does). */
export function tokenF1(answer: string, reference: string): number {
  const a = answerTokens(answer);
  const r = answerTokens(reference);
  if (a.length === 0 || r.length === 0) return a.length === r.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const t of r) counts.set(t, (counts.get(t) ?? 0) + 1);
  let common = 0;
  for (const t of a) {
    const left = counts.get(t) ?? 0;
    if (left > 0) {
      common++;
      counts.set(t, left - 1);
    }
  }
  if (common === 0) return 0;
  const precision = common / a.length;
  const recall = common / r.length;
  return (2 * precision * recall) / (precision + recall);
}

/**
 * 1 when every word of `key` is a word of the answer (any order, normalised). Whole words, so the
 * key "14" is not found in "140"; a key with no words never counts as recalled.
 */
export function factRecall(answer: string, key: string): number {
  const words = answerTokens(key);
  if (words.length === 0) return 0;
  const have = new Set(answerTokens(answer));
  return words.every((w) => have.has(w)) ? 1 : 0;
}

export interface RecordScores {
  exactMatch: number;
  contains: number;
  f1: number;
  /** Present when the record names a key. */
  factRecall?: number;
}

export function scoreAnswer(answer: string, reference: string, key: string | undefined): RecordScores {
  return {
    exactMatch: exactMatch(answer, reference),
    contains: containsReference(answer, reference),
    f1: tokenF1(answer, reference),
    ...(key === undefined ? {} : { factRecall: factRecall(answer, key) }),
  };
}

export interface ScoreSummary {
  records: number;
  exactMatch: number;
  contains: number;
  f1: number;
  /** Mean over the records that name a key; undefined when none does. */
  factRecall: number | undefined;
  /** How many records name a key. */
  keyed: number;
  /** How many keyed records were recalled. */
  recalled: number;
  meanConfidence: number;
}

const mean = (xs: number[]): number => (xs.length === 0 ? 0 : xs.reduce((s, x) => s + x, 0) / xs.length);

/** Means over records; fact recall only over the records that name a key. */
export function summarize(rows: ReadonlyArray<{ scores: RecordScores; confidence: number }>): ScoreSummary {
  const keyed = rows.flatMap((r) => (r.scores.factRecall === undefined ? [] : [r.scores.factRecall]));
  return {
    records: rows.length,
    exactMatch: mean(rows.map((r) => r.scores.exactMatch)),
    contains: mean(rows.map((r) => r.scores.contains)),
    f1: mean(rows.map((r) => r.scores.f1)),
    factRecall: keyed.length === 0 ? undefined : mean(keyed),
    keyed: keyed.length,
    recalled: keyed.filter((x) => x === 1).length,
    meanConfidence: mean(rows.map((r) => r.confidence)),
  };
}
