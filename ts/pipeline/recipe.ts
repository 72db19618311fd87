// The default training recipe: what `foremforge train` uses for every hyperparameter the user did
// not set, chosen from the dataset (records, tokens, how many are question/answer pairs) and the
// base model (parameter count). A pure function, so each rule is unit-tested
// (test/unit/recipe.test.ts). The numbers come from benches/recipe-sweep.mjs, whose measured table
// is benches/results/recipe-sweep.md (SmolLM2-135M-Instruct on 30 one-pair-per-fact questions, a
// 100-pair set and the 66-pair sample); the published results that guided the sweep are cited at
// each rule.

export const ALL_PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;

export interface RecipeInput {
  /** Records in the training file. */
  records: number;
  /** Tokens of all records, chat template included (the trainer's dry-run count). */
  tokens: number;
  /** Base model parameters. */
  parameters: number;
  /** The user gave a separate eval file (no split needed to report eval metrics). */
  hasEvalData: boolean;
  /** The user asked for evaluations (--eval-every or --early-stopping) without an eval file. */
  evalRequested?: boolean;
}

export interface Recipe {
  targetModules: string[];
  loraR: number;
  loraAlpha: number;
  lr: number;
  epochs: number;
  warmupRatio: number;
  evalSplit: number;
  evalEvery: number;
  earlyStoppingPatience?: number;
  /** Model-written rewordings per question (`train --augment N`; 0: none). */
  augment: number;
  /** Shipped general-text passages trained once alongside (`train --rehearsal N`; 0: none). */
  rehearsal: number;
}

export interface RecipeChoice {
  recipe: Recipe;
  /** One short line per rule that fired, for the printed block and tinyforge.json. */
  reasons: string[];
}

/**
 * Training tokens the recipe may spend: 5 minutes at 250 tok/s, the demo's measured LoRA
 * throughput on 2 idle Xeon cores (README). Epochs are cut so tokens × epochs stays under it.
 */
export const TOKEN_BUDGET = 75_000;
/** Rehearsal passages for a many-pass run: all 60 shipped (~5.9k SmolLM2 tokens). */
export const REHEARSAL_PASSAGES = 60;
/** Mean SmolLM2 tokens of a shipped passage (5.9k for 60), for the budget. */
export const PASSAGE_TOKENS = 100;
/** Up to this many records no eval split is held out: every record is a fact the user wants learned. */
export const NO_SPLIT_MAX_RECORDS = 500;

const round1 = (x: number): string => (x >= 1e9 ? `${(x / 1e9).toFixed(1)}B` : `${Math.round(x / 1e6)}M`);

export function chooseRecipe(input: RecipeInput): RecipeChoice {
  const reasons: string[] = [];
  const records = Math.max(1, input.records);

  // LoRA on every linear projection: QLoRA (Dettmers et al. 2023) needed all of them to match full
  // fine-tuning; the sweep's attention-only run recalled fewer held-out facts.
  const targetModules = [...ALL_PROJECTIONS];
  const loraR = 16;
  const loraAlpha = 32;
  reasons.push('LoRA r 16 (alpha 32) on all 7 projections: attention-only recalled 6/30 facts against 22/30 in the sweep');

  // The LoRA learning rate falls with model size: QLoRA used 2e-4 for 7B/13B and 1e-4 for 33B/65B;
  // LoRA's best rates sit ~10x above full fine-tuning's (Biderman et al. 2024, "LoRA Learns Less
  // and Forgets Less"). For ≤ 0.5B the sweep measured 2e-3 (2e-4 left the 135M model unchanged).
  let lr: number;
  if (input.parameters <= 5e8) lr = 2e-3;
  else if (input.parameters <= 3e9) lr = 5e-4;
  else if (input.parameters <= 2e10) lr = 2e-4;
  else lr = 1e-4;
  reasons.push(`lr ${lr} for a ${round1(input.parameters)}-parameter model`);

  // Rewording is off by default: Allen-Zhu & Li 2023 ("Physics of Language Models 3.1") find facts
  // become extractable under new wording when training states them in varied forms, but here three
  // model-written rewordings per question bought 23/30 held-out facts against 22/30 without, for
  // twice the steps and general perplexity +148% against +73% (benches/results/recipe-sweep.md):
  // a 135M model's rewordings are too close to the original (or wrong) to add variety.
  // `--augment N` turns it on.
  const augment = 0;

  // Rehearsal: plain general English (shipped, ../dataset/rehearsal.ts) trained with the LM loss,
  // each passage once over the run. The facts' many passes are what costs the general language:
  // 8 epochs on 30 one-sentence answers took general-text perplexity +82% (38.5 -> 70.3), and the
  // model learned to end every sentence (it emits end-of-turn after most full stops of plain text:
  // a quarter of the added loss sat on the word after a full stop). With the passages trained once
  // it stays within 10% of the base (benches/results/recipe-sweep.md). Sets trained in 1-2
  // passes were not measured to forget and train without it.
  // With them a small set gets 10 passes instead of 8: on the 30 facts, 8 passes and 30 passages
  // recalled 18/30 (general ppl -14%), 10 passes and all 60 passages 19/30 (-25%), both as one pass
  // over the records written E times; the facts x8 in one pass without passages recalled 14/30
  // against true epochs' 22/30. So the trainer now makes real epochs, each with its own slice of
  // the passages (crates/train/src/epoch_plan.rs): 10 epochs + 60 passages recalled 20/30 (-24%).
  let rehearsal = 0;
  let epochs = records <= 200 ? 10 : records <= 2000 ? 4 : 2;
  if (epochs >= 3) rehearsal = REHEARSAL_PASSAGES;

  // Small sets are facts to learn, each one needed: a split would withhold some from training (the
  // default 0.1 kept 3 of 30 facts out). Larger sets hold out 5% (at most 200) to watch for overfit.
  let evalSplit = 0;
  let evalEvery = 0;
  let earlyStoppingPatience: number | undefined;
  const tokensPerEpoch = input.tokens * (1 + augment);
  // Passes (chosen above): facts stated once need many (the sweep: 3 epochs learned almost
  // nothing, 8 about half); big sets need few. Then cut to the token budget, the rehearsal
  // passages (seen once) counted first.
  const fit = Math.max(1, Math.floor((TOKEN_BUDGET - rehearsal * PASSAGE_TOKENS) / Math.max(1, tokensPerEpoch)));
  if (fit < epochs) {
    reasons.push(`epochs ${fit} (not ${epochs}): ${tokensPerEpoch} tokens per epoch, budget ${TOKEN_BUDGET} tokens (~5 min on 2 cores)`);
    epochs = fit;
  } else reasons.push(`epochs ${epochs} for ${records} records${augment > 0 ? ` (x${1 + augment} with rewordings)` : ''}`);
  if (epochs < 3) rehearsal = 0;
  if (rehearsal > 0) {
    reasons.push(
      `rehearsal ${rehearsal}: general-text passages trained once alongside the ${epochs} passes, to keep general-text perplexity within 10% of the base`
    );
  }

  if (input.evalRequested && !input.hasEvalData && records <= NO_SPLIT_MAX_RECORDS) {
    // Evaluations asked for need records to evaluate on: the trainer's usual tenth.
    evalSplit = 0.1;
    reasons.push('eval split 0.1: evaluations were asked for and there is no --eval-data');
  } else if (records <= NO_SPLIT_MAX_RECORDS) {
    // A small set's eval loss is reported at the end, never used to stop: each record is a fact to
    // learn, and a held-out loss on other text (or on rewordings) would stop before they are.
    reasons.push(
      input.hasEvalData
        ? 'no early stopping: --eval-data is scored at the end; with few records every one is a fact to learn'
        : `no eval split: with ${records} records every one is a fact to learn`
    );
  } else {
    if (!input.hasEvalData) evalSplit = Math.min(0.05, 200 / records);
    // Ten evaluations over the run: often enough to stop early, few enough to cost little.
    const steps = Math.ceil(((records * (1 - evalSplit) * (1 + augment)) / 4) * epochs);
    evalEvery = Math.max(1, Math.ceil(steps / 10));
    earlyStoppingPatience = 3;
    reasons.push(
      `${input.hasEvalData ? 'eval on --eval-data' : `eval split ${evalSplit.toFixed(3)} (${Math.round(evalSplit * records)} records)`} every ${evalEvery} steps, early stopping after 3 without improvement`
    );
  }
  return {
    recipe: {
      targetModules,
      loraR,
      loraAlpha,
      lr,
      epochs,
      warmupRatio: 0.05,
      evalSplit,
      evalEvery,
      ...(earlyStoppingPatience === undefined ? {} : { earlyStoppingPatience }),
      augment,
      rehearsal,
    },
    reasons,
  };
}
