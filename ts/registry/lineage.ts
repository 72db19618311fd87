// One-call registration for the commands that produce artifacts: `foremforge train` calls
// registerRunFromFolder(runDir), `foremforge export` calls registerExportFromFolder(serviceDir),
// `foremforge pull` calls registerPulledModel(result). Each reads what the producer already wrote
// (the folder's tinyforge.json manifest) and fills the gaps it can compute (dataset hash and
// record count, file sizes), so producers need not know the registry's schema.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ForgeError } from '../errors.js';
import { readLineBatches } from '../dataset/lines.js';
import { sha256File } from './files.js';
import { type Artifact, type ArtifactInput, Registry } from './registry.js';

export const MANIFEST_FILE = 'tinyforge.json';

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

export interface RegisterOptions {
  /** An open registry; default: Registry.open() (closed afterwards). */
  registry?: Registry;
  /** Registry home when no registry is given. */
  home?: string;
  /** Overrides the parent found in the manifest. */
  parentId?: string;
}

async function withRegistry<T>(options: RegisterOptions, fn: (r: Registry) => Promise<T>): Promise<T> {
  if (options.registry) return fn(options.registry);
  const r = Registry.open(options.home ? { home: options.home } : {});
  try {
    return await fn(r);
  } finally {
    r.close();
  }
}

function readManifest(dir: string): Json {
  const file = path.join(dir, MANIFEST_FILE);
  if (!existsSync(file)) {
    throw new ForgeError('MANIFEST_MISSING', `${dir} has no ${MANIFEST_FILE}`, {
      suggestion: 'is this a TinyForge run or service folder?',
    });
  }
  try {
    const m = obj(JSON.parse(readFileSync(file, 'utf8')));
    if (!m) throw new Error('not a JSON object');
    return m;
  } catch (err) {
    throw new ForgeError('MANIFEST_INVALID', `${file}: ${(err as Error).message}`, {
      suggestion: `fix or re-create ${MANIFEST_FILE} (it is written by train and export)`,
      cause: err,
    });
  }
}

async function countRecords(file: string): Promise<number> {
  let n = 0;
  for await (const { lines } of readLineBatches(file)) for (const l of lines) if (l.trim().length > 0) n++;
  return n;
}

/** `base` as a string (name or path) or {name, path, sha256}. */
function baseOf(m: Json): ArtifactInput['baseModel'] {
  const raw = m.base ?? m.baseModel;
  if (str(raw)) return { name: raw as string };
  const b = obj(raw);
  if (!b) return undefined;
  const name = str(b.name) ?? str(b.path) ?? str(b.repo);
  if (!name) return undefined;
  return { name, ...(str(b.sha256) ? { sha256: b.sha256 as string } : {}) };
}

/** `data` as a path or {path, sha256, records}; hash and count are computed when missing. */
async function datasetOf(m: Json, dir: string): Promise<ArtifactInput['dataset']> {
  const raw = m.data ?? m.dataset;
  const d = str(raw) ? { path: raw as string } : obj(raw);
  const p = d && str(d.path);
  if (!d || !p) return undefined;
  const abs = path.resolve(dir, p);
  const readable = existsSync(abs);
  const sha256 = str(d.sha256) ?? (readable ? await sha256File(abs) : undefined);
  const records = typeof d.records === 'number' ? d.records : readable ? await countRecords(abs) : undefined;
  return { path: abs, ...(sha256 ? { sha256 } : {}), ...(records !== undefined ? { records } : {}) };
}

/** The parent as an id, {id}, or {path} of a registered artifact. */
function parentOf(m: Json, registry: Registry, dir: string, keys: string[]): string | undefined {
  for (const key of keys) {
    const raw = m[key];
    if (str(raw)) {
      const ref = raw as string;
      const byPath = registry.findByPath(path.resolve(dir, ref));
      if (byPath) return byPath.id;
      try {
        return registry.get(ref).id;
      } catch {
        continue;
      }
    }
    const o = obj(raw);
    if (o && str(o.id)) return o.id as string;
    if (o && str(o.path)) {
      const found = registry.findByPath(path.resolve(dir, o.path as string));
      if (found) return found.id;
    }
  }
  return undefined;
}

const KNOWN = new Set([
  'kind',
  'name',
  'base',
  'baseModel',
  'data',
  'dataset',
  'hyperparameters',
  'metrics',
  'versions',
  'parent',
  'parentId',
  'run',
  'source',
]);

function extraOf(m: Json): Json {
  return Object.fromEntries(Object.entries(m).filter(([k]) => !KNOWN.has(k)));
}

/**
 * Registers a training run folder from its tinyforge.json: base (+sha256), data (+sha256,
 * records), hyperparameters, metrics, versions, parent (a resumed-from run). Re-registering the
 * same folder updates its row.
 */
export async function registerRunFromFolder(runDir: string, options: RegisterOptions = {}): Promise<Artifact> {
  const dir = path.resolve(runDir);
  const m = readManifest(dir);
  return withRegistry(options, async (registry) => {
    const parentId = options.parentId ?? parentOf(m, registry, dir, ['parent', 'parentId']);
    const dataset = await datasetOf(m, dir);
    const baseModel = baseOf(m);
    return registry.registerRun({
      path: dir,
      ...(str(m.name) ? { name: m.name as string } : {}),
      ...(parentId ? { parentId } : {}),
      ...(baseModel ? { baseModel } : {}),
      ...(dataset ? { dataset } : {}),
      hyperparameters: obj(m.hyperparameters) ?? {},
      metrics: obj(m.metrics) ?? {},
      versions: (obj(m.versions) ?? {}) as Record<string, string>,
      extra: extraOf(m),
    });
  });
}

/**
 * Registers a service folder from its tinyforge.json; the parent is the run it was exported
 * from (`run`/`source`: a registered id, or the run folder's path).
 */
export async function registerExportFromFolder(serviceDir: string, options: RegisterOptions = {}): Promise<Artifact> {
  const dir = path.resolve(serviceDir);
  const m = readManifest(dir);
  return withRegistry(options, async (registry) => {
    const parentId = options.parentId ?? parentOf(m, registry, dir, ['run', 'source', 'parent', 'parentId']);
    const parent = parentId ? registry.get(parentId) : undefined;
    const baseModel =
      baseOf(m) ??
      (parent?.baseModel ? { name: parent.baseModel, ...(parent.baseSha256 ? { sha256: parent.baseSha256 } : {}) } : undefined);
    const dataset =
      (await datasetOf(m, dir)) ??
      (parent?.datasetPath
        ? {
            path: parent.datasetPath,
            ...(parent.datasetSha256 ? { sha256: parent.datasetSha256 } : {}),
            ...(parent.datasetRecords !== null ? { records: parent.datasetRecords } : {}),
          }
        : undefined);
    return registry.registerExport({
      path: dir,
      ...(str(m.name) ? { name: m.name as string } : {}),
      ...(parentId ? { parentId } : {}),
      ...(baseModel ? { baseModel } : {}),
      ...(dataset ? { dataset } : {}),
      hyperparameters: obj(m.hyperparameters) ?? parent?.hyperparameters ?? {},
      metrics: obj(m.metrics) ?? {},
      versions: (obj(m.versions) ?? {}) as Record<string, string>,
      extra: extraOf(m),
    });
  });
}

/** What `pullModel` returns (ts/models/pull.ts), as far as the registry needs it. */
export interface PulledModel {
  name: string;
  path: string;
  format: string;
  sha256: string;
  source: string;
}

/** Registers a pulled base model; a model found at a user's local path is never deleted by rm. */
export async function registerPulledModel(model: PulledModel, options: RegisterOptions = {}): Promise<Artifact> {
  return withRegistry(options, (registry) =>
    registry.registerBaseModel({
      path: model.path,
      name: model.name,
      sha256: model.sha256,
      owned: model.source !== 'local' && model.source !== 'hf-cache',
      extra: { format: model.format, source: model.source },
    })
  );
}
