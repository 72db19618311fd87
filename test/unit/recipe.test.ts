// The default recipe's rules (ts/pipeline/recipe.ts) on the dataset shapes the sweep measured and
// on the edges between them: each rule has a case on each side of its threshold.
import { describe, expect, it } from 'vitest';
import {
  ALL_PROJECTIONS,
  NO_SPLIT_MAX_RECORDS,
  PASSAGE_TOKENS,
  REHEARSAL_PASSAGES,
  TOKEN_BUDGET,
  chooseRecipe,
} from '../../ts/pipeline/recipe.js';

const SMOL = 134_515_008;
const base = { parameters: SMOL, hasEvalData: false };

describe('chooseRecipe', () => {
  it('30 question/answer facts: all projections, lr 2e-3, 10 epochs, rehearsal passages, no rewording, no eval split', () => {
    const { recipe, reasons } = chooseRecipe({ ...base, records: 30, tokens: 1653 });
    expect(recipe.targetModules).toEqual([...ALL_PROJECTIONS]);
    expect(recipe.loraR).toBe(16);
    expect(recipe.loraAlpha).toBe(32);
    expect(recipe.lr).toBe(2e-3);
    expect(recipe.augment).toBe(0);
    expect(recipe.epochs).toBe(10);
    expect(recipe.evalSplit).toBe(0);
    expect(recipe.evalEvery).toBe(0);
    expect(recipe.earlyStoppingPatience).toBeUndefined();
    expect(recipe.rehearsal).toBe(REHEARSAL_PASSAGES);
    expect(REHEARSAL_PASSAGES).toBe(60);
    expect(recipe.epochs * 1653 * (1 + recipe.augment) + recipe.rehearsal * PASSAGE_TOKENS).toBeLessThanOrEqual(TOKEN_BUDGET);
    expect(reasons.some((r) => r.includes('no eval split'))).toBe(true);
    expect(reasons.some((r) => r.startsWith(`rehearsal ${REHEARSAL_PASSAGES}`))).toBe(true);
  });

  it('rehearses only runs of 3 or more passes, and counts the passages in the budget', () => {
    // 4 epochs planned, the budget left after 60 passages (6k tokens) fits 3.
    const three = chooseRecipe({ ...base, records: 400, tokens: 20_000 }).recipe;
    expect(three.epochs).toBe(3);
    expect(three.rehearsal).toBe(REHEARSAL_PASSAGES);
    expect(three.epochs * 20_000 + three.rehearsal * PASSAGE_TOKENS).toBeLessThanOrEqual(TOKEN_BUDGET);
    // 3 passes without the passages, 2 with them: cut to 2, no rehearsal.
    expect(chooseRecipe({ ...base, records: 400, tokens: 24_000 }).recipe.rehearsal).toBe(0);
    expect(chooseRecipe({ ...base, records: 400, tokens: 24_000 }).recipe.epochs).toBe(2);
    // 2 passes planned for a big set.
    expect(chooseRecipe({ ...base, records: 3000, tokens: 20_000 }).recipe.rehearsal).toBe(0);
  });

  it('cuts epochs to the token budget, never below 1', () => {
    const big = chooseRecipe({ ...base, records: 400, tokens: 60_000 });
    expect(big.recipe.epochs).toBe(1);
    expect(big.reasons.some((r) => r.includes('budget'))).toBe(true);
    const mid = chooseRecipe({ ...base, records: 400, tokens: 20_000 });
    expect(mid.recipe.epochs).toBe(3);
    expect(chooseRecipe({ ...base, records: 10_000, tokens: 2_000_000 }).recipe.epochs).toBe(1);
  });

  it('holds out an eval split with early stopping only past the no-split size', () => {
    expect(chooseRecipe({ ...base, records: NO_SPLIT_MAX_RECORDS, tokens: 30_000 }).recipe.evalSplit).toBe(0);
    const r = chooseRecipe({ ...base, records: NO_SPLIT_MAX_RECORDS + 1, tokens: 30_000 }).recipe;
    expect(r.evalSplit).toBeCloseTo(0.05);
    expect(r.rehearsal).toBe(0);
    expect(r.earlyStoppingPatience).toBe(3);
    expect(r.evalEvery).toBeGreaterThan(0);
    // 200 eval records at most.
    expect(chooseRecipe({ ...base, records: 10_000, tokens: 2_000_000 }).recipe.evalSplit * 10_000).toBeCloseTo(200);
  });

  it('with --eval-data: scored at the end for a small set, early stopping for a large one', () => {
    const small = chooseRecipe({ ...base, hasEvalData: true, records: 30, tokens: 1653 }).recipe;
    expect(small.evalSplit).toBe(0);
    expect(small.evalEvery).toBe(0);
    expect(small.earlyStoppingPatience).toBeUndefined();
    const large = chooseRecipe({ ...base, hasEvalData: true, records: 5000, tokens: 300_000 }).recipe;
    expect(large.evalSplit).toBe(0);
    expect(large.earlyStoppingPatience).toBe(3);
    expect(large.evalEvery).toBeGreaterThan(0);
  });

  it('keeps a tenth for eval when evaluations are asked for without an eval file', () => {
    const r = chooseRecipe({ ...base, records: 30, tokens: 1653, evalRequested: true });
    expect(r.recipe.evalSplit).toBe(0.1);
    expect(chooseRecipe({ ...base, hasEvalData: true, records: 30, tokens: 1653, evalRequested: true }).recipe.evalSplit).toBe(0);
  });

  it('lowers the learning rate for bigger models', () => {
    const lr = (parameters: number) => chooseRecipe({ records: 30, tokens: 1653, parameters, hasEvalData: false }).recipe.lr;
    expect(lr(SMOL)).toBe(2e-3);
    expect(lr(1.7e9)).toBe(5e-4);
    expect(lr(7e9)).toBe(2e-4);
    expect(lr(70e9)).toBe(1e-4);
  });
});
