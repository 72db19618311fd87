// Puts the default recipe (./recipe.ts) into a training run: measures the data with the trainer's
// own dry run (records and tokens exactly as training will see them), reads the model's size from
// its config, fills every hyperparameter the user left unset and remembers which ones the user
// set. Also runs the recipe's paraphrase augmentation into the run folder.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Generator, JsTrainOptions } from '@tinyforge/native';
import { augmentFile, formatAugmentReport } from '../dataset/augment.js';
import { rehearsalRecords } from '../dataset/rehearsal.js';
import { native } from '../native.js';
import { type Recipe, type RecipeInput, chooseRecipe } from './recipe.js';

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
  'rehearsal',
];

export async function applyRecipe(
  options: JsTrainOptions,
  flags: { augment?: number | undefined; rehearsal?: number | undefined }
): Promise<AppliedRecipe> {
  const dry = await native().train({ ...options, dryRun: true });
  const records = dry.data.valid;
  // Only a set small enough to augment is read a second time (the rule needs its pair count).
  const input: RecipeInput = {
    records,
    tokens: dry.data.tokens,
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
    ...(flags.augment !== undefined ? { augment: flags.augment } : {}),
    ...(flags.rehearsal !== undefined ? { rehearsal: flags.rehearsal } : {}),
  };
  const fromFlags = KEYS.filter((k) => given[k] !== undefined);
  const recipe: Recipe = { ...choice.recipe, ...given };
  const reasons = [...choice.reasons];
  if (dry.data.invalid > 0 && options.skipInvalid !== true) {
    // Training stops on bad records; its error must name the user's file, not a prepared copy.
    recipe.augment = 0;
    recipe.rehearsal = 0;
    reasons.push(`no rehearsal or rewording: ${dry.data.invalid} invalid records stop the run`);
  }
  if (options.maxSteps !== undefined && flags.rehearsal === undefined && recipe.rehearsal > 0) {
    // Passages are seen once only when the run is a number of passes; under --max-steps they would
    // cycle with the data, and repeated passages are memorised (general ppl 38.5 -> 145.9 measured).
    dropRehearsal(recipe, reasons, 'no rehearsal: --max-steps sets the length, so the passages would repeat');
  }
  if (options.epochs !== undefined && options.epochs < 3 && flags.rehearsal === undefined && recipe.rehearsal > 0) {
    // The recipe's own rule (./recipe.ts): under 3 passes the passages would outweigh the records.
    dropRehearsal(recipe, reasons, `no rehearsal: --epochs ${options.epochs} is under 3 passes`);
  }
  const { augment: _augment, rehearsal: _rehearsal, earlyStoppingPatience, ...trainerValues } = recipe;
  const merged: JsTrainOptions = {
    ...options,
    ...trainerValues,
    ...(earlyStoppingPatience === undefined ? {} : { earlyStoppingPatience }),
  };
  if (options.maxSteps !== undefined && options.epochs === undefined) delete merged.epochs;
  return { options: merged, recipe, fromFlags, reasons, input };
}

/** Sets the recipe's rehearsal to 0 and replaces the reason that chose it with `why`. */
function dropRehearsal(recipe: Recipe, reasons: string[], why: string): void {
  recipe.rehearsal = 0;
  const i = reasons.findIndex((r) => r.startsWith('rehearsal '));
  if (i >= 0) reasons.splice(i, 1);
  reasons.push(why);
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
    mark('rehearsal', `rehearsal ${r.rehearsal}`),
  ].join(', ');
  const head = `recipe for ${a.input.records} records, ${a.input.tokens} tokens, ${Math.round(a.input.parameters / 1e6)}M-parameter model:`;
  return [head, `  ${values}`, ...a.reasons.map((x) => `  - ${x}`)].join('\n');
}

export interface PrepareOptions {
  data: string;
  out: string;
  base: string;
  augment: number;
  rehearsal: number;
  seed: number;
  resume: boolean;
  log: (line: string) => void;
}

export interface PreparedData {
  /** The records to train: `data` itself, or `out/train-data.jsonl` with the rewordings. */
  data: string;
  /** `out/rehearsal.jsonl`, the general-text passages (the trainer's `rehearsalData`), if any. */
  rehearsalData?: string;
}

/**
 * Writes the run's prepared data: `out/train-data.jsonl`, the records with N rewordings per
 * question (../dataset/augment.ts, written by the base model), and `out/rehearsal.jsonl`, R
 * general-text passages (../dataset/rehearsal.ts, shipped text) that the trainer shares out over
 * the epochs so each is seen once per run while the records get real epochs. A resumed run reuses
 * the files so it trains on the records its checkpoint counted.
 */
export async function prepareRunData(o: PrepareOptions): Promise<PreparedData> {
  const file = path.join(o.out, 'train-data.jsonl');
  const passagesFile = path.join(o.out, 'rehearsal.jsonl');
  const prepared: PreparedData = { data: o.augment > 0 ? file : o.data };
  if (o.rehearsal > 0) prepared.rehearsalData = passagesFile;
  if (o.resume && (o.augment === 0 || existsSync(file)) && (o.rehearsal === 0 || existsSync(passagesFile))) return prepared;
  await mkdir(o.out, { recursive: true });
  let generator: Generator | undefined;
  const load = async (): Promise<Generator> => {
    generator ??= await native().Generator.load(o.base);
    return generator;
  };
  const write = async (target: string, text: string): Promise<void> => {
    const tmp = `${target}.${process.pid}.tmp`;
    await writeFile(tmp, text);
    await rename(tmp, target);
  };
  if (o.augment > 0) {
    const augmented = path.join(o.out, `.augmented.${process.pid}.jsonl`);
    try {
      o.log(`augmenting ${o.data}: ${o.augment} rewordings per question, written by the base model...`);
      const report = await augmentFile(o.data, augmented, load, { paraphrases: o.augment, seed: o.seed });
      o.log(formatAugmentReport(report, file));
      await write(file, await readFile(augmented, 'utf8'));
    } finally {
      await rm(augmented, { force: true });
    }
  }
  if (o.rehearsal > 0) {
    const passages = await rehearsalRecords(o.rehearsal);
    await write(passagesFile, passages.map((p) => `${JSON.stringify(p)}\n`).join(''));
    o.log(`rehearsal: ${passages.length} general-text passages, each trained once (a slice per epoch)`);
  }
  return prepared;
}
