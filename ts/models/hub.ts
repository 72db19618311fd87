// Fetches an HF-format model over the Hugging Face hub protocol
// (`GET {endpoint}/{repo}/resolve/{revision}/{file}`) into the TinyForge cache. Files land in a
// staging folder as `.part`; only when all are complete and verified does the folder get its final
// name and the manifest (which is what makes the cache serve it).
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { type ModelSpec, weightsFile } from './catalog.js';
import { type FileRecord, type Manifest, modelDir, rememberHash, stagingDir, writeManifest } from './cache.js';
import { DownloadError, downloadToPart } from './download.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubOptions {
  endpoint: string;
  revision: string;
  signal?: AbortSignal | undefined;
  onProgress?: ((p: { file: string; received: number; total?: number }) => void) | undefined;
}

export function hubToken(): string | undefined {
  return process.env.HF_TOKEN || process.env.HUGGING_FACE_HUB_TOKEN || undefined;
}

export function resolveUrl(endpoint: string, repo: string, revision: string, file: string): URL {
  const base = endpoint.replace(/\/+$/, '');
  return new URL(`${base}/${repo}/resolve/${encodeURIComponent(revision)}/${file}`);
}

/** Small files first and the weights last, so a failure rarely throws away a finished big file. */
function downloadOrder(spec: ModelSpec): { file: string; required: boolean }[] {
  const weights = weightsFile(spec.requiredFiles);
  const rest = spec.requiredFiles.filter((f) => f !== weights).map((file) => ({ file, required: true }));
  const optional = spec.optionalFiles.map((file) => ({ file, required: false }));
  return [...rest, ...optional, ...(weights ? [{ file: weights, required: true }] : [])];
}

export async function downloadFromHub(spec: ModelSpec, cacheDir: string, opts: HubOptions): Promise<Manifest> {
  let endpointOrigin: string;
  try {
    endpointOrigin = new URL(opts.endpoint).origin;
  } catch {
    throw new DownloadError('http', `"${opts.endpoint}" is not a URL`);
  }
  const staging = stagingDir(cacheDir, spec.name, 'hf');
  await mkdir(staging, { recursive: true });
  const files: Record<string, FileRecord> = {};
  let commit: string | undefined;
  for (const { file, required } of downloadOrder(spec)) {
    const part = path.join(staging, `${file}.part`);
    try {
      const got = await downloadToPart(resolveUrl(opts.endpoint, spec.repo, opts.revision, file), part, {
        token: hubToken(),
        tokenOrigin: endpointOrigin,
        signal: opts.signal,
        onBytes: (received, total) => opts.onProgress?.(total === undefined ? { file, received } : { file, received, total }),
      });
      files[file] = { sha256: got.sha256, size: got.size };
      commit ??= got.commit;
    } catch (err) {
      if (!required && err instanceof DownloadError && err.kind === 'not-found') continue;
      throw err;
    }
  }
  for (const file of Object.keys(files)) {
    await rename(path.join(staging, `${file}.part`), path.join(staging, file));
  }
  const dir = modelDir(cacheDir, spec.name);
  const finalDir = path.join(dir, 'hf');
  // Anything already there had no valid manifest (or the cache would have served it): replace it.
  await rm(path.join(dir, 'hf.json'), { force: true });
  await rm(finalDir, { recursive: true, force: true });
  await rename(staging, finalDir);
  for (const [file, rec] of Object.entries(files)) await rememberHash(path.join(finalDir, file), rec.sha256);
  const weights = weightsFile(Object.keys(files)) ?? 'config.json';
  const manifest: Manifest = {
    name: spec.name,
    format: 'hf',
    source: 'hub',
    repo: spec.repo,
    revision: commit ?? opts.revision,
    main: '.',
    sha256: files[weights]?.sha256 ?? '',
    files,
    createdAt: new Date().toISOString(),
  };
  await writeManifest(cacheDir, manifest);
  return manifest;
}
