// Reads the Hugging Face hub cache (the layout `huggingface_hub` writes), so a model a user already
// downloaded with Python tools is used in place, without network:
//   <hub>/models--Org--Name/refs/<revision>       → a commit hash
//   <hub>/models--Org--Name/snapshots/<commit>/…  → the files (symlinks into blobs/)
//   <hub>/models--Org--Name/blobs/<etag>          → LFS blobs are named by their sha256
import { readFile, readdir, realpath, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type ModelSpec, weightsFile } from './catalog.js';
import { sha256File } from './cache.js';

export function hfHubCacheDir(): string {
  const explicit = process.env.HF_HUB_CACHE ?? process.env.HUGGINGFACE_HUB_CACHE;
  if (explicit) return explicit;
  const home = process.env.HF_HOME ?? path.join(os.homedir(), '.cache', 'huggingface');
  return path.join(home, 'hub');
}

async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

async function snapshotFor(repoDir: string, revision: string): Promise<string | undefined> {
  if (/^[0-9a-f]{40}$/.test(revision)) return revision;
  try {
    return (await readFile(path.join(repoDir, 'refs', revision), 'utf8')).trim();
  } catch {
    // No ref file (e.g. a cache copied by hand): accept a single snapshot for the default branch.
    if (revision !== 'main') return undefined;
    const snaps = await readdir(path.join(repoDir, 'snapshots')).catch(() => [] as string[]);
    return snaps.length === 1 ? snaps[0] : undefined;
  }
}

export async function findInHfCache(
  spec: ModelSpec,
  revision: string,
  signal?: AbortSignal
): Promise<{ path: string; sha256: string } | { reason: string }> {
  const repoDir = path.join(hfHubCacheDir(), `models--${spec.repo.replace('/', '--')}`);
  const commit = await snapshotFor(repoDir, revision);
  if (!commit) return { reason: `no ${spec.repo}@${revision} in ${path.dirname(repoDir)}` };
  const snapshot = path.join(repoDir, 'snapshots', commit);
  for (const file of spec.requiredFiles) {
    if (!(await isFile(path.join(snapshot, file)))) return { reason: `${snapshot} lacks ${file}` };
  }
  const weights = weightsFile(spec.requiredFiles) ?? 'config.json';
  const weightsPath = path.join(snapshot, weights);
  const sha256 = await sha256File(weightsPath, signal);
  // The blob an LFS file links to is named by its sha256: a mismatch means a corrupt download.
  const blob = path.basename(await realpath(weightsPath));
  if (/^[0-9a-f]{64}$/.test(blob) && blob !== sha256) {
    return { reason: `${weightsPath} is corrupt (sha256 ${sha256}, blob name ${blob})` };
  }
  return { path: snapshot, sha256 };
}
