// Training orchestration: resolves the base model (a path, or a name through pullModel), runs the
// native `train()` off the main thread with progress events and an AbortSignal, and writes the
// loss curve (loss.svg) into the run folder. The CLI and the API call this, not the binding.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { JsTrainOptions, JsTrainProgress, JsTrainResult } from '@tinyforge/native';
import { type FileProblem, datasetWarnings } from '../dataset/validate.js';
import { ForgeError, hasCode } from '../errors.js';
import { DEFAULT_MODEL } from '../models/catalog.js';
import { pullModel } from '../models/pull.js';
import { native } from '../native.js';
import { lossCurveSvg } from './loss-curve.js';

export type TrainProgress = JsTrainProgress;
export type TrainResult = JsTrainResult & {
  lossCurve?: string;
  /** Dry runs: the data's warnings as `data validate` reports them (first 1000), and their count. */
  warnings?: FileProblem[];
  warningCount?: number;
};

export interface TrainRunOptions extends Omit<JsTrainOptions, 'base'> {
  /** Model folder, .gguf file or catalog name. Default: the default model (pulled if needed). */
  base?: string;
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
  const { onProgress, signal, base, ...rest } = options;
  if (!existsSync(rest.data)) {
    throw new ForgeError('INVALID_ARGUMENT', `data file not found: ${rest.data}`, { suggestion: 'pass --data path/to/records.jsonl' });
  }
  const resolved = await resolveBase(base, signal);
  // An already-aborted signal never fires `abort` again, so the native side would not see it.
  if (signal?.aborted) throw new ForgeError('ABORTED', 'training was aborted before it started');
  const jsOptions: JsTrainOptions = { ...rest, base: resolved };
  let result: JsTrainResult;
  try {
    result = await native().train(jsOptions, onProgress, signal);
  } catch (err) {
    if (hasCode(err) && err.code === 'ABORTED') {
      throw new ForgeError('ABORTED', err.message, {
        suggestion: `run the same command with --resume to continue from the checkpoint in ${rest.out}`,
        cause: err,
      });
    }
    throw err;
  }
  if (result.dryRun) {
    // The trainer lists the records it rejects (errors); the warnings come from the dataset
    // checker, which applies the same record rules (ts/dataset/README.md) plus file-level ones.
    const { warnings, total } = await datasetWarnings(rest.evalData ? [rest.data, rest.evalData] : [rest.data]);
    return { ...result, warnings, warningCount: total };
  }
  if (result.history.length === 0) return result;
  const svg = path.join(result.runDir, 'loss.svg');
  await writeFile(svg, lossCurveSvg(result.history, `Training loss — ${path.basename(resolved)}`));
  return { ...result, lossCurve: svg };
}
