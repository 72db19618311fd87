// Puts the default recipe (./recipe.ts) into a training run: measures the data with the trainer's
// own dry run (records and tokens exactly as training will see them), reads the model's size from
// its config, fills every hyperparameter the user left unset and remembers which ones the user
// set. Also runs the recipe's paraphrase augmentation into the run folder.
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { JsTrainOptions } from '@tinyforge/native';
import { augmentFile, formatAugmentReport } from '../dataset/augment.js';
import { checkLine } from '../dataset/check-record.js';
import { native } from '../native.js';
import { AUGMENT_MAX_PAIRS, type Recipe, type RecipeInput, chooseRecipe } from './recipe.js';

export interface AppliedRecipe {
  /** The options training runs with (the user's values where given, the recipe's elsewhere). */
  options: JsTrainOptions;
  /** The values in force, whoever chose them. */
  recipe: Recipe;
  /** Recipe fields the user set by flag. */
  fromFlags: (keyof Recipe)[];
  reasons: string[];
  input: RecipeInput;
}

const KEYS: (keyof Recipe)[] = [
  'targetModules',
  'loraR',
  'loraAlpha',
  'lr',
  'epochs',
  'warmupRatio',
  'evalSplit',
  'evalEvery',
  'earlyStoppingPatience',
  'augment',
];

/** Question/answer records: pairs and single-turn chats (what augmentation can reword). */
async function countQaPairs(file: string): Promise<number> {
  let n = 0;
  for (const [i, line] of (await readFile(file, 'utf8')).split('\n').entries()) {
    if (line.trim() === '') continue;
    const { record } = checkLine(line, i + 1);
    if (record === undefined) continue;
    if ('input' in record) n++;
    else if ('messages' in record && record.messages.filter((m) => m.role !== 'system').length === 2) n++;
  }
  return n;
}

export async function applyRecipe(options: JsTrainOptions, augment: number | undefined): Promise<AppliedRecipe> {
  const dry = await native().train({ ...options, dryRun: true });
  const records = dry.data.valid;
  // Only a set small enough to augment is read a second time (the rule needs its pair count).
  // A file with bad records is not reworded: training refuses it (or skips them), and the trainer's
  // own error, naming each line, is the one to see.
  const qaPairs = records <= AUGMENT_MAX_PAIRS / 0.8 && dry.data.invalid === 0 ? await countQaPairs(options.data) : 0;
  const input: RecipeInput = {
    records,
    tokens: dry.data.tokens,
    qaPairs,
    parameters: native().modelInfo(options.base).parameters,
    hasEvalData: options.evalData !== undefined,
    evalRequested: (options.evalEvery ?? 0) > 0 || options.earlyStoppingPatience !== undefined,
  };
  const choice = chooseRecipe(input);
  const given: Partial<Recipe> = {
    ...(options.targetModules !== undefined ? { targetModules: options.targetModules } : {}),
    ...(options.loraR !== undefined ? { loraR: options.loraR } : {}),
    ...(options.loraAlpha !== undefined ? { loraAlpha: options.loraAlpha } : {}),
    ...(options.lr !== undefined ? { lr: options.lr } : {}),
    // --max-steps decides the length, so the recipe's epochs are not in force either.
    ...(options.epochs !== undefined || options.maxSteps !== undefined ? { epochs: options.epochs ?? choice.recipe.epochs } : {}),
    ...(options.warmupRatio !== undefined ? { warmupRatio: options.warmupRatio } : {}),
    ...(options.evalSplit !== undefined ? { evalSplit: options.evalSplit } : {}),
    ...(options.evalEvery !== undefined ? { evalEvery: options.evalEvery } : {}),
    ...(options.earlyStoppingPatience !== undefined ? { earlyStoppingPatience: options.earlyStoppingPatience } : {}),
    ...(augment !== undefined ? { augment } : {}),
  };
  const fromFlags = KEYS.filter((k) => given[k] !== undefined);
  const recipe: Recipe = { ...choice.recipe, ...given };
  const { augment: _augment, earlyStoppingPatience, ...trainerValues } = recipe;
  const merged: JsTrainOptions = {
    ...options,
    ...trainerValues,
    ...(earlyStoppingPatience === undefined ? {} : { earlyStoppingPatience }),
  };
  if (options.maxSteps !== undefined && options.epochs === undefined) delete merged.epochs;
  return { options: merged, recipe, fromFlags, reasons: choice.reasons, input };
}

/** The recipe as the CLI prints it: one line of values, then why, then what the user overrode. */
export function formatRecipe(a: AppliedRecipe): string {
  const r = a.recipe;
  const mark = (k: keyof Recipe, text: string): string => (a.fromFlags.includes(k) ? `${text} (flag)` : text);
  const targets = r.targetModules.length === 7 ? 'all 7 projections' : r.targetModules.join(',');
  const values = [
    mark('targetModules', targets),
    mark('loraR', `r ${r.loraR}`),
    mark('loraAlpha', `alpha ${r.loraAlpha}`),
    mark('lr', `lr ${r.lr}`),
    mark('epochs', `${r.epochs} epochs`),
    mark('warmupRatio', `warmup ${r.warmupRatio}`),
    mark('evalSplit', `eval split ${r.evalSplit}`),
    mark('augment', `augment ${r.augment}`),
  ].join(', ');
  const head = `recipe for ${a.input.records} records, ${a.input.tokens} tokens, ${Math.round(a.input.parameters / 1e6)}M-parameter model:`;
  return [head, `  ${values}`, ...a.reasons.map((x) => `  - ${x}`)].join('\n');
}

/**
 * Writes `out/augmented.jsonl` (the data plus N rewordings per question) and returns its path.
 * A resumed run reuses the file so it trains on the same records its checkpoint counted.
 */
export async function augmentForRun(
  data: string,
  out: string,
  base: string,
  n: number,
  seed: number,
  resume: boolean,
  log: (line: string) => void
): Promise<string> {
  const file = path.join(out, 'augmented.jsonl');
  if (resume && existsSync(file)) return file;
  await mkdir(out, { recursive: true });
  log(`augmenting ${data}: ${n} rewordings per question, written by the base model...`);
  const report = await augmentFile(data, file, async () => native().Generator.load(base), { paraphrases: n, seed });
  log(formatAugmentReport(report, file));
  return file;
}
