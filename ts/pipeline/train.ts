// Training orchestration: resolves the base model (a path, or a name through pullModel), runs the
// native `train()` off the main thread with progress events and an AbortSignal, and writes the
// loss curve (loss.svg) into the run folder. The CLI and the API call this, not the binding.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { JsTrainOptions, JsTrainProgress, JsTrainResult } from '@tinyforge/native';
import { type FileProblem, datasetWarnings } from '../dataset/validate.js';
import { ForgeError, hasCode } from '../errors.js';
import { DEFAULT_MODEL } from '../models/catalog.js';
import { pullModel } from '../models/pull.js';
import { native } from '../native.js';
import { type RunEval, evalAfterTraining } from './eval-run.js';
import { lossCurveSvg } from './loss-curve.js';
import { type AppliedRecipe, applyRecipe, prepareRunData } from './recipe-apply.js';

export type TrainProgress = JsTrainProgress;
export type TrainResult = JsTrainResult & {
  lossCurve?: string;
  /** The default recipe's choices (absent with --full or --no-recipe). */
  recipe?: AppliedRecipe;
  /** With `evalData`: the finished run's `foremforge eval` on it (also in tinyforge.json). */
  eval?: RunEval;
  /** Dry runs: the data's warnings as `data validate` reports them (first 1000), and their count. */
  warnings?: FileProblem[];
  warningCount?: number;
};

export interface TrainRunOptions extends Omit<JsTrainOptions, 'base'> {
  /** Model folder, .gguf file or catalog name. Default: the default model (pulled if needed). */
  base?: string;
  /** Model-written rewordings per question added before training (`data augment`); 0: none. */
  augment?: number;
  /** Shipped general-text passages trained once alongside, to keep general text; 0: none. */
  rehearsal?: number;
  /** Fill unset hyperparameters from the data-driven recipe (./recipe.ts). @default true */
  recipe?: boolean;
  /** Called once the recipe is chosen, before any augmentation or training. */
  onRecipe?: (r: AppliedRecipe) => void;
  /** Lines about work before training (the augmentation's start and report). */
  onLog?: (line: string) => void;
  onProgress?: (p: TrainProgress) => void;
  signal?: AbortSignal;
}

/** A path as is; anything else is a model name resolved (and fetched if needed) by pullModel. */
export async function resolveBase(base: string | undefined, signal?: AbortSignal): Promise<string> {
  const name = base ?? DEFAULT_MODEL;
  if (existsSync(name)) return path.resolve(name);
  const pulled = await pullModel(name, signal ? { signal } : {});
  return pulled.path;
}

export async function runTraining(options: TrainRunOptions): Promise<TrainResult> {
  const { onProgress, onRecipe, onLog, signal, base, augment, rehearsal, recipe: useRecipe, ...rest } = options;
  if (!existsSync(rest.data)) {
    throw new ForgeError('INVALID_ARGUMENT', `data file not found: ${rest.data}`, { suggestion: 'pass --data path/to/records.jsonl' });
  }
  const resolved = await resolveBase(base, signal);
  // An already-aborted signal never fires `abort` again, so the native side would not see it.
  if (signal?.aborted) throw new ForgeError('ABORTED', 'training was aborted before it started');
  let jsOptions: JsTrainOptions = { ...rest, base: resolved };
  let applied: AppliedRecipe | undefined;
  let extra = { augment: augment ?? 0, rehearsal: rehearsal ?? 0 };
  if (useRecipe !== false && rest.full !== true) {
    applied = await applyRecipe(jsOptions, { augment, rehearsal });
    jsOptions = applied.options;
    onRecipe?.(applied);
    extra = { augment: applied.recipe.augment, rehearsal: applied.recipe.rehearsal };
  }
  if ((extra.augment > 0 || extra.rehearsal > 0) && !rest.dryRun) {
    // Rehearsal passages are seen once per run (../dataset/rehearsal.ts says why): the trainer
    // gives each epoch all the records and its own slice of the passages.
    const prepared = await prepareRunData({
      data: rest.data,
      out: rest.out,
      base: resolved,
      ...extra,
      seed: rest.seed ?? 42,
      resume: rest.resume === true,
      log: onLog ?? (() => {}),
    });
    jsOptions = { ...jsOptions, ...prepared };
  }
  // A dry run plans with the passages too (they change the step count), written to a temporary
  // folder so the run folder is not created; rewordings need the model and are left out.
  const dryPassages = extra.rehearsal > 0 && rest.dryRun ? await mkdtemp(path.join(tmpdir(), 'tinyforge-dry-run-')) : undefined;
  let result: JsTrainResult;
  try {
    if (dryPassages !== undefined) {
      const log = () => {};
      const prepared = await prepareRunData({
        data: rest.data,
        out: dryPassages,
        base: resolved,
        augment: 0,
        rehearsal: extra.rehearsal,
        seed: rest.seed ?? 42,
        resume: false,
        log,
      });
      jsOptions = { ...jsOptions, ...prepared };
    }
    result = await native().train(jsOptions, onProgress, signal);
  } catch (err) {
    if (hasCode(err) && err.code === 'ABORTED') {
      throw new ForgeError('ABORTED', err.message, {
        suggestion: `run the same command with --resume to continue from the checkpoint in ${rest.out}`,
        cause: err,
      });
    }
    throw err;
  } finally {
    if (dryPassages !== undefined) await rm(dryPassages, { recursive: true, force: true });
  }
  if (result.dryRun) {
    // The trainer lists the records it rejects (errors); the warnings come from the dataset
    // checker, which applies the same record rules (ts/dataset/README.md) plus file-level ones.
    const { warnings, total } = await datasetWarnings(rest.evalData ? [rest.data, rest.evalData] : [rest.data]);
    return { ...result, warnings, warningCount: total, ...(applied ? { recipe: applied } : {}) };
  }
  if (applied && result.manifest) await recordRecipe(result.manifest, applied);
  // The same eval as `foremforge eval --model RUN --data F` (answers, metrics, loss).
  const finalEval = rest.evalData === undefined ? undefined : await evalAfterTraining(result.runDir, rest.evalData);
  const withRecipe = { ...result, ...(applied ? { recipe: applied } : {}), ...(finalEval ? { eval: finalEval } : {}) };
  if (result.history.length === 0) return withRecipe;
  const svg = path.join(result.runDir, 'loss.svg');
  await writeFile(svg, lossCurveSvg(result.history, `Training loss — ${path.basename(resolved)}`));
  return { ...withRecipe, lossCurve: svg };
}

/** Adds the recipe (values, which came from flags, reasons) to the run's tinyforge.json, atomically. */
async function recordRecipe(manifest: string, applied: AppliedRecipe): Promise<void> {
  const json = JSON.parse(await readFile(manifest, 'utf8')) as Record<string, unknown>;
  json.recipe = { values: applied.recipe, fromFlags: applied.fromFlags, reasons: applied.reasons, input: applied.input };
  const tmp = `${manifest}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(json, null, 2)}\n`);
  await rename(tmp, manifest);
}
