// What `foremforge export --model X` exports: X may be a run folder, its tinyforge.json, a
// registry id or name, a base model (HF folder, .gguf file or catalog name), or a PEFT adapter
// folder (with `--base`). Every case resolves to one weights source (a base, plus an adapter
// merged on the way) and the lineage the export folder records. Nothing heavy happens here
// except hashing a base model that is exported without a run.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ForgeError } from '../errors.js';
import { catalogNames, resolveSpec } from '../models/catalog.js';
import { sha256File } from '../registry/files.js';
import { MANIFEST_FILE } from '../registry/lineage.js';
import type { Artifact, Registry } from '../registry/registry.js';
import { baseSha256 } from './export-hash.js';
import { resolveBase } from './train.js';

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

export interface BaseModelRef {
  /** Absolute path of the HF folder or GGUF file. */
  path: string;
  format: 'hf' | 'gguf';
  sha256: string;
  /** Catalog or registry name when known. */
  name?: string;
}

export interface AdapterRef {
  /** The PEFT adapter folder (adapter_config.json + adapter_model.safetensors). */
  path: string;
  /** adapter_config.json as written. */
  config: Json;
  /** SHA-256 of adapter_model.safetensors. */
  sha256: string;
}

export interface ExportSource {
  /** How the user named it: 'run' (a run folder), 'base' (no fine-tuning), 'adapter' (--adapter over --base). */
  kind: 'run' | 'base' | 'adapter';
  /** What the weights are read from: the base, or a full fine-tune's model folder. */
  modelPath: string;
  /** Merged into `modelPath` before the export. */
  adapter?: AdapterRef;
  base: BaseModelRef;
  /** The run folder and its manifest, for a run. */
  run?: { path: string; manifest: Json };
  /** The registry row this export descends from (a run or a base), when registered. */
  parentId?: string;
}

export interface SourceRequest {
  /** --model: run folder, tinyforge.json, registry id/name, base folder/.gguf/catalog name. */
  model?: string;
  /** --adapter: a PEFT adapter folder. */
  adapter?: string;
  /** --base: the base model under --adapter (or a moved base of a run). */
  base?: string;
  registry: Registry;
  signal?: AbortSignal;
}

const invalidRun = (file: string, reason: string, suggestion?: string): ForgeError =>
  new ForgeError('RUN_INVALID', `${file}: ${reason}`, {
    suggestion: suggestion ?? 'pass a run folder written by `foremforge train` (it holds tinyforge.json and adapter/ or model/)',
  });

function formatOf(p: string): 'hf' | 'gguf' {
  return statSync(p).isFile() ? 'gguf' : 'hf';
}

/** Reads tinyforge.json; a missing or broken manifest names the file and what is wrong. */
function readRunManifest(runDir: string): Json {
  const file = path.join(runDir, MANIFEST_FILE);
  if (!existsSync(file)) {
    throw invalidRun(file, 'missing (the training run did not finish, or this is not a run folder)');
  }
  let m: Json | undefined;
  try {
    m = obj(JSON.parse(readFileSync(file, 'utf8')));
  } catch (err) {
    throw invalidRun(file, `not valid JSON (${(err as Error).message})`, 'fix the file or train the run again');
  }
  if (!m) throw invalidRun(file, 'not a JSON object');
  if (m.kind === 'tinyforge.export') {
    throw new ForgeError('INVALID_ARGUMENT', `${runDir} is an export folder, not a run`, {
      suggestion: 'export from the run it came from (see `foremforge models show`)',
    });
  }
  if (m.kind !== undefined && m.kind !== 'tinyforge.run')
    throw invalidRun(file, `kind is ${JSON.stringify(m.kind)}, expected "tinyforge.run"`);
  return m;
}

/** Checks an adapter folder and reads its config; every problem names the file. */
export async function readAdapter(dir: string): Promise<AdapterRef> {
  const abs = path.resolve(dir);
  const cfgFile = path.join(abs, 'adapter_config.json');
  const weights = path.join(abs, 'adapter_model.safetensors');
  const bad = (file: string, reason: string) =>
    new ForgeError('ADAPTER_INVALID', `${file}: ${reason}`, {
      suggestion: 'an adapter folder holds adapter_config.json and adapter_model.safetensors (PEFT format)',
    });
  if (!existsSync(abs) || !statSync(abs).isDirectory()) throw bad(abs, 'no such adapter folder');
  if (!existsSync(cfgFile)) throw bad(cfgFile, 'missing');
  if (!existsSync(weights)) throw bad(weights, 'missing');
  let config: Json | undefined;
  try {
    config = obj(JSON.parse(readFileSync(cfgFile, 'utf8')));
  } catch (err) {
    throw bad(cfgFile, `not valid JSON (${(err as Error).message})`);
  }
  if (!config) throw bad(cfgFile, 'not a JSON object');
  return { path: abs, config, sha256: await sha256File(weights) };
}

/** A base given by path or name; hashed the way training records it, so lineage rows match. */
async function baseRef(spec: string, signal: AbortSignal | undefined, registry: Registry): Promise<BaseModelRef> {
  const p = await resolveBase(spec, signal);
  const registered = registry.findByPath(p, 'base_model');
  const sha256 = registered?.baseSha256 ?? (await baseSha256(p));
  const name = registered?.name ?? (existsSync(spec) ? undefined : spec);
  return { path: p, format: formatOf(p), sha256, ...(name ? { name } : {}) };
}

/** The base a run was trained on, from its manifest; `override` replaces a base that moved. */
async function runBase(
  runDir: string,
  m: Json,
  override: string | undefined,
  signal: AbortSignal | undefined,
  registry: Registry
): Promise<BaseModelRef> {
  const file = path.join(runDir, MANIFEST_FILE);
  const b = obj(m.base);
  const recorded = str(b?.path) ?? str(m.base);
  const sha = str(b?.sha256);
  if (override !== undefined) {
    const ref = await baseRef(override, signal, registry);
    if (sha && ref.sha256 !== sha) {
      throw new ForgeError('BASE_MISMATCH', `--base ${override} has SHA-256 ${ref.sha256}, but ${file} was trained on ${sha}`, {
        suggestion: 'pass the same base model the run was trained on',
      });
    }
    return ref;
  }
  if (!recorded) throw invalidRun(file, 'has no base.path');
  const abs = path.resolve(runDir, recorded);
  if (!existsSync(abs)) {
    throw new ForgeError('MODEL_NOT_FOUND', `${file} names the base model ${abs}, which does not exist`, {
      suggestion: 'pass --base PATH to point at a copy of it (its SHA-256 must match)',
    });
  }
  const registered = registry.findByPath(abs, 'base_model');
  return {
    path: abs,
    format: str(b?.format) === 'gguf' ? 'gguf' : str(b?.format) === 'hf' ? 'hf' : formatOf(abs),
    sha256: sha ?? registered?.baseSha256 ?? (await baseSha256(abs)),
    ...(registered ? { name: registered.name } : {}),
  };
}

async function fromRun(runDir: string, request: SourceRequest): Promise<ExportSource> {
  const dir = path.resolve(runDir);
  const manifest = readRunManifest(dir);
  const file = path.join(dir, MANIFEST_FILE);
  const outputs = obj(manifest.outputs) ?? {};
  const base = await runBase(dir, manifest, request.base, request.signal, request.registry);
  const parentId = request.registry.findByPath(dir, 'run')?.id;
  const common = { kind: 'run' as const, base, run: { path: dir, manifest }, ...(parentId ? { parentId } : {}) };
  if (str(outputs.model)) {
    // A full fine-tune: the run holds a complete HF folder.
    const modelDir = path.join(dir, outputs.model as string);
    if (!existsSync(path.join(modelDir, 'config.json')))
      throw invalidRun(path.join(modelDir, 'config.json'), 'missing (the full fine-tune model folder is incomplete)');
    return { ...common, modelPath: modelDir };
  }
  const adapterDir = path.join(dir, str(outputs.adapter) ?? 'adapter');
  if (!existsSync(adapterDir)) throw invalidRun(file, `names the adapter folder ${adapterDir}, which does not exist`);
  return { ...common, modelPath: base.path, adapter: await readAdapter(adapterDir) };
}

async function fromAdapter(adapterDir: string, request: SourceRequest): Promise<ExportSource> {
  const adapter = await readAdapter(adapterDir);
  const fromConfig = str(adapter.config.base_model_name_or_path);
  const spec = request.base ?? (fromConfig && (existsSync(fromConfig) || isModelName(fromConfig)) ? fromConfig : undefined);
  if (!spec) {
    throw new ForgeError(
      'INVALID_ARGUMENT',
      `which base model is ${adapter.path} for? Its adapter_config.json names ${JSON.stringify(fromConfig ?? null)}`,
      {
        suggestion: 'pass --base with the model folder, .gguf file or catalog name the adapter was trained on',
      }
    );
  }
  const base = await baseRef(spec, request.signal, request.registry);
  const parentId = request.registry.findByPath(base.path, 'base_model')?.id;
  return { kind: 'adapter', modelPath: base.path, adapter, base, ...(parentId ? { parentId } : {}) };
}

async function fromBase(spec: string, request: SourceRequest): Promise<ExportSource> {
  const base = await baseRef(spec, request.signal, request.registry);
  const parentId = request.registry.findByPath(base.path, 'base_model')?.id;
  return { kind: 'base', modelPath: base.path, base, ...(parentId ? { parentId } : {}) };
}

/**
 * A catalog name or a catalog model's repo id. Other repo-shaped strings are not taken as names:
 * `runs/a` with a typo must be "not found", not a download attempt from the hub.
 */
function isModelName(name: string): boolean {
  try {
    return catalogNames().includes(resolveSpec(name).name);
  } catch {
    return false;
  }
}

/** What is at an existing path: a run, an adapter, an HF base folder or a GGUF file. */
async function fromPath(p: string, request: SourceRequest): Promise<ExportSource> {
  const abs = path.resolve(p);
  const st = statSync(abs);
  if (st.isFile()) {
    if (path.basename(abs) === MANIFEST_FILE) return fromRun(path.dirname(abs), request);
    if (abs.toLowerCase().endsWith('.gguf')) return fromBase(abs, request);
    throw new ForgeError('INVALID_ARGUMENT', `${abs} is neither a .gguf model file nor a run's ${MANIFEST_FILE}`, {
      suggestion: 'pass a run folder, a model folder (config.json + model.safetensors) or a .gguf file',
    });
  }
  const has = (name: string) => existsSync(path.join(abs, name));
  if (has(MANIFEST_FILE) || has('adapter') || has('checkpoints') || has('metrics.jsonl')) return fromRun(abs, request);
  if (has('adapter_config.json')) return fromAdapter(abs, request);
  if (has('config.json')) return fromBase(abs, request);
  throw new ForgeError(
    'INVALID_ARGUMENT',
    `${abs} is not a run folder (no ${MANIFEST_FILE}), an adapter folder (no adapter_config.json) or a model folder (no config.json)`,
    {
      suggestion: 'pass the folder `foremforge train --out` wrote, or a base model',
    }
  );
}

/** Resolves --model / --adapter / --base to what gets exported. */
export async function resolveExportSource(request: SourceRequest): Promise<ExportSource> {
  if (request.adapter !== undefined) {
    if (request.model !== undefined) {
      throw new ForgeError('INVALID_ARGUMENT', '--model and --adapter exclude each other', {
        suggestion: 'export a run with --model RUN, or an adapter with --adapter DIR --base MODEL',
      });
    }
    return fromAdapter(request.adapter, request);
  }
  const model = request.model;
  if (model === undefined || model.length === 0) {
    throw new ForgeError('INVALID_ARGUMENT', 'nothing to export', {
      suggestion: 'pass --model RUN (a run folder, registry id or base model) or --adapter DIR --base MODEL',
    });
  }
  if (existsSync(model)) return fromPath(model, request);
  let registered: Artifact | undefined;
  try {
    registered = request.registry.get(model);
  } catch (err) {
    if ((err as { code?: string }).code === 'AMBIGUOUS_ID') throw err;
  }
  if (registered) {
    if (registered.kind === 'export') {
      throw new ForgeError('INVALID_ARGUMENT', `${registered.id} is an export, not a run or base model`, {
        suggestion: registered.parentId ? `export its parent instead: --model ${registered.parentId}` : 'export the run it came from',
      });
    }
    if (!existsSync(registered.path)) {
      throw new ForgeError(
        'NOT_FOUND',
        `${registered.id} (${registered.kind}) is registered at ${registered.path}, which no longer exists`,
        {
          suggestion: 'remove the stale row with `foremforge models rm --keep-files` and export from a folder',
        }
      );
    }
    const source = await fromPath(registered.path, request);
    return { ...source, parentId: registered.id };
  }
  if (isModelName(model)) return fromBase(model, request);
  throw new ForgeError('NOT_FOUND', `--model ${model}: no such file or folder, registry id or model name`, {
    suggestion: `pass a run folder, see \`foremforge models list\`, or name a model (${catalogNames().join(', ')})`,
  });
}
