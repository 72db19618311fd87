// What `--dir` points at, and which engine serves it: an export folder (onnx/*.onnx +
// tinyforge.json) is served by the ONNX Runtime `InferenceSession` (engines/ort.ts); model and
// run folders keep the candle engine for evaluation use.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ForgeError } from '../errors.js';
import type { Engine } from './engine.js';
// Static (it is small; the native addon loads on first use): a dynamic import would defer the
// session load by a few event-loop turns, during which startService's other startup work runs
// instead of overlapping with the load.
import { OrtEngine } from './engines/ort.js';

export type ServeTarget =
  | { kind: 'model'; model: string; id: string }
  | { kind: 'run'; model: string; adapter?: string; id: string }
  | { kind: 'export'; dir: string; id: string };

interface RunManifest {
  kind?: unknown;
  name?: unknown;
  base?: { path?: unknown };
  outputs?: { adapter?: unknown; model?: unknown };
}

function readManifest(file: string): RunManifest {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as RunManifest;
  } catch (err) {
    throw new ForgeError('MANIFEST_INVALID', `${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** Classifies `dir`: a GGUF file, an HF model folder, a training run folder or an export folder. */
export function resolveServeTarget(dir: string): ServeTarget {
  const abs = path.resolve(dir);
  if (!existsSync(abs)) throw new ForgeError('MODEL_NOT_FOUND', `--dir ${dir} does not exist`);
  const id = path.basename(abs).replace(/\.gguf$/i, '');
  if (statSync(abs).isFile()) return { kind: 'model', model: abs, id };
  const manifestFile = path.join(abs, 'tinyforge.json');
  if (existsSync(path.join(abs, 'config.json')) && !existsSync(manifestFile)) return { kind: 'model', model: abs, id };
  if (!existsSync(manifestFile)) {
    throw new ForgeError(
      'MODEL_NOT_FOUND',
      `--dir ${dir} is neither a model (config.json or .gguf) nor a TinyForge folder (tinyforge.json)`,
      {
        suggestion: 'point --dir at a base model, a `foremforge train` run folder or a `foremforge export` folder',
      }
    );
  }
  const manifest = readManifest(manifestFile);
  const name = typeof manifest.name === 'string' && manifest.name !== '' ? manifest.name : id;
  if (manifest.kind !== 'tinyforge.run') return { kind: 'export', dir: abs, id: name };
  const outputs = manifest.outputs ?? {};
  if (typeof outputs.model === 'string') return { kind: 'run', model: path.join(abs, outputs.model), id: name };
  const base = manifest.base?.path;
  if (typeof base !== 'string') throw new ForgeError('MANIFEST_INVALID', `${manifestFile}: base.path is missing`);
  const adapter = typeof outputs.adapter === 'string' ? path.join(abs, outputs.adapter) : undefined;
  if (adapter !== undefined && !existsSync(adapter)) {
    throw new ForgeError('RUN_INVALID', `${manifestFile}: outputs.adapter ${adapter} does not exist (the run did not finish?)`);
  }
  return { kind: 'run', model: path.resolve(abs, base), ...(adapter === undefined ? {} : { adapter }), id: name };
}

export interface LoadEngineOptions {
  /** Compute threads (the ORT engine's intra-op threads; candle uses its own pool). */
  threads?: number;
  /** Largest number of sequences decoded together (the ORT engine's batch). */
  maxBatch?: number;
  /** ORT's idle intra-op threads spin between ops (the ORT engine only). */
  spinning?: boolean;
}

export async function loadEngine(target: ServeTarget, options: LoadEngineOptions = {}): Promise<Engine> {
  switch (target.kind) {
    case 'model':
    case 'run': {
      const { CandleEngine } = await import('./engines/candle.js');
      return CandleEngine.load({
        model: target.model,
        ...(target.kind === 'run' && target.adapter ? { adapter: target.adapter } : {}),
        id: target.id,
      });
    }
    case 'export': {
      return OrtEngine.load({
        dir: target.dir,
        id: target.id,
        ...(options.threads === undefined ? {} : { threads: options.threads }),
        ...(options.maxBatch === undefined ? {} : { maxBatch: options.maxBatch }),
        ...(options.spinning === undefined ? {} : { spinning: options.spinning }),
      });
    }
  }
}
