// One download of a model at a time per cache: two processes pulling the same model (two test
// runs, a CLI next to a test) would otherwise append to the same `.part`. The lock is a directory
// (mkdir is atomic) holding the owner's pid; a lock whose owner is gone is taken over.
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

const POLL_MS = 250;
/** A lock without a readable owner (crash between mkdir and write) counts as stale after this. */
const ORPHAN_MS = 60_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function stale(lock: string): Promise<boolean> {
  try {
    const owner = JSON.parse(await readFile(path.join(lock, 'owner.json'), 'utf8')) as { pid: number; host: string };
    // A lock from another host (shared cache on NFS) cannot be checked: trust it.
    return owner.host === os.hostname() && !alive(owner.pid);
  } catch {
    const st = await stat(lock).catch(() => undefined);
    return st !== undefined && Date.now() - st.mtimeMs > ORPHAN_MS;
  }
}

/** Waits for and takes the lock at `lock`; returns the function that releases it. */
export async function acquireLock(lock: string, signal?: AbortSignal): Promise<() => Promise<void>> {
  await mkdir(path.dirname(lock), { recursive: true });
  for (;;) {
    try {
      await mkdir(lock);
      await writeFile(path.join(lock, 'owner.json'), JSON.stringify({ pid: process.pid, host: os.hostname() }));
      return () => rm(lock, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (await stale(lock)) {
      await rm(lock, { recursive: true, force: true });
      continue;
    }
    await delay(POLL_MS, undefined, { signal });
  }
}
