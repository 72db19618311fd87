// File facts for lineage (sizes, SHA-256) and the one guarded delete the registry performs.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ForgeError } from '../errors.js';

export interface ArtifactFile {
  /** Relative to the artifact's path ('' when the artifact is a single file). */
  path: string;
  size: number;
  sha256?: string;
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
}

/** Every regular file under `root` (or `root` itself when it is a file), with sizes. */
export async function listFiles(root: string, options: { hash?: boolean } = {}): Promise<ArtifactFile[]> {
  const out: ArtifactFile[] = [];
  const visit = async (abs: string, rel: string) => {
    const st = await lstat(abs);
    if (st.isDirectory()) {
      for (const name of (await readdir(abs)).sort()) await visit(path.join(abs, name), rel ? `${rel}/${name}` : name);
    } else if (st.isFile()) {
      out.push({ path: rel, size: st.size, ...(options.hash ? { sha256: await sha256File(abs) } : {}) });
    }
  };
  try {
    await visit(root, '');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return out;
}

/**
 * Deletes an artifact's files, refusing paths whose loss would be a disaster however the row got
 * there: a filesystem root, the home folder or one of its ancestors, the current folder or one of
 * its ancestors.
 */
export function assertSafeToDelete(target: string): string {
  const abs = path.resolve(target);
  const forbidden = [os.homedir(), process.cwd()];
  const isAncestorOf = (a: string, b: string) => a === b || b.startsWith(a.endsWith(path.sep) ? a : a + path.sep);
  if (abs === path.parse(abs).root || forbidden.some((f) => isAncestorOf(abs, path.resolve(f)))) {
    throw new ForgeError('UNSAFE_DELETE', `refusing to delete ${abs}: it is a root, home or working folder (or holds one)`, {
      suggestion: 'delete the files by hand if you really mean it, then `foremforge models rm --keep-files`',
    });
  }
  return abs;
}

export async function deleteArtifactPath(target: string): Promise<void> {
  await rm(assertSafeToDelete(target), { recursive: true, force: true });
}
