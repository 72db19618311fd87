// Where an export is written, and how it lands atomically. The folder is built in a hidden
// sibling (`.<name>.tmp-<pid>-<hex>`, same filesystem, so the final step is a rename) and moved
// into place only when every file is written and checked: a failure, Ctrl-C or a full disk
// leaves no half-written export, and an --overwrite replaces the old folder in two renames.
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ForgeError } from '../errors.js';
import { MANIFEST_FILE } from '../registry/lineage.js';

const isInside = (child: string, parent: string): boolean =>
  child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep);

/** The path with its existing part resolved through symlinks, so checks see where files really go. */
function realPath(p: string): string {
  let head = p;
  const tail: string[] = [];
  while (!existsSync(head)) {
    tail.unshift(path.basename(head));
    const up = path.dirname(head);
    if (up === head) break;
    head = up;
  }
  return path.join(realpathSync(head), ...tail);
}

export interface OutCheck {
  /** --out as given. */
  out: string;
  overwrite: boolean;
  /** Folders and files the export reads: --out may not be, hold or sit inside any of them. */
  sources: string[];
  /** The registry home: an export must not replace it. */
  home?: string;
}

/**
 * Validates --out and returns its absolute path. Refused: a root, home, working folder or any
 * ancestor of them; a source of this export (or a folder holding one, or a folder inside one);
 * the registry home; a symlink; a file; a non-empty folder without --overwrite; with --overwrite,
 * a non-empty folder that is not a TinyForge export (--overwrite replaces exports, nothing else).
 */
export function checkOut(check: OutCheck): string {
  if (check.out.trim().length === 0)
    throw new ForgeError('INVALID_ARGUMENT', '--out is empty', { suggestion: 'pass --out DIR, the folder to write' });
  const abs = path.resolve(check.out);
  const real = realPath(abs);
  const unsafe = (why: string) =>
    new ForgeError('UNSAFE_PATH', `--out ${check.out} resolves to ${real}, ${why}`, {
      suggestion: 'choose a new folder for the export, e.g. --out exports/my-model',
    });
  if (real === path.parse(real).root) throw unsafe('a filesystem root');
  for (const f of [os.homedir(), process.cwd()]) {
    if (isInside(realPath(path.resolve(f)), real)) throw unsafe(`which is or holds ${f}`);
  }
  for (const s of check.sources) {
    const src = realPath(path.resolve(s));
    if (isInside(src, real)) throw unsafe(`which is or holds ${s}, an input of this export`);
    if (statSync(src).isDirectory() && isInside(real, src)) throw unsafe(`which is inside ${s}, an input of this export`);
  }
  if (check.home && isInside(real, realPath(check.home))) throw unsafe(`inside the TinyForge home ${check.home}`);
  if (!existsSync(abs)) return abs;
  if (lstatSync(abs).isSymbolicLink()) throw unsafe('a symbolic link (pass the folder it points to)');
  if (!statSync(abs).isDirectory()) {
    throw new ForgeError('FILE_EXISTS', `--out ${abs} exists and is not a folder`, { suggestion: 'choose a new folder for the export' });
  }
  const entries = readdirSync(abs);
  if (entries.length === 0) return abs;
  if (!check.overwrite) {
    throw new ForgeError('FILE_EXISTS', `--out ${abs} is not empty (${entries.length} entries)`, {
      suggestion: 'choose a new folder, or pass --overwrite to replace the export in it',
    });
  }
  if (!isExportFolder(abs)) {
    throw new ForgeError(
      'FILE_EXISTS',
      `--out ${abs} is not empty and holds no TinyForge export (${MANIFEST_FILE} of kind tinyforge.export)`,
      {
        suggestion: '--overwrite only replaces an earlier export; choose a new folder',
      }
    );
  }
  return abs;
}

function isExportFolder(dir: string): boolean {
  try {
    const m = JSON.parse(readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')) as { kind?: unknown };
    return m.kind === 'tinyforge.export';
  } catch {
    return false;
  }
}

const STAGING = /^\.(.+)\.(tmp|old)-(\d+)-[0-9a-f]+$/;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes staging folders of `out` left by an export that was killed outright (SIGKILL, power
 * loss): those the normal cleanup could not reach. Only folders whose process is gone.
 */
export function removeStaleStaging(out: string): string[] {
  const parent = path.dirname(out);
  const removed: string[] = [];
  if (!existsSync(parent)) return removed;
  for (const name of readdirSync(parent)) {
    const m = STAGING.exec(name);
    if (!m || m[1] !== path.basename(out) || alive(Number(m[3]))) continue;
    if (m[2] === 'old' && !existsSync(out)) {
      // Killed between its two renames: the previous export is whole, put it back.
      renameSync(path.join(parent, name), out);
      continue;
    }
    rmSync(path.join(parent, name), { recursive: true, force: true });
    removed.push(path.join(parent, name));
  }
  return removed;
}

/** Removes this process's staging folders of `out` at once (a second Ctrl-C, before exiting). */
export function discardOwnStaging(out: string): void {
  const parent = path.dirname(path.resolve(out));
  if (!existsSync(parent)) return;
  for (const name of readdirSync(parent)) {
    const m = STAGING.exec(name);
    if (m && m[1] === path.basename(out) && m[2] === 'tmp' && Number(m[3]) === process.pid)
      rmSync(path.join(parent, name), { recursive: true, force: true });
  }
}

/** A staging folder beside `out`; `commit` moves it into place, `discard` removes it. */
export class StagingFolder {
  readonly out: string;
  readonly dir: string;
  private done = false;

  constructor(out: string) {
    this.out = out;
    const parent = path.dirname(out);
    mkdirSync(parent, { recursive: true });
    this.dir = path.join(parent, `.${path.basename(out)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    mkdirSync(this.dir);
  }

  /** Replaces `out` with the staged folder: old → .old sibling, staged → out, then old removed. */
  commit(): void {
    const parent = path.dirname(this.out);
    let old: string | undefined;
    if (existsSync(this.out)) {
      old = path.join(parent, `.${path.basename(this.out)}.old-${process.pid}-${randomBytes(4).toString('hex')}`);
      renameSync(this.out, old);
    }
    try {
      renameSync(this.dir, this.out);
    } catch (err) {
      if (old) renameSync(old, this.out);
      throw err;
    }
    this.done = true;
    if (old) rmSync(old, { recursive: true, force: true });
  }

  /** Removes the staging folder (idempotent; safe to call from a signal handler). */
  discard(): void {
    if (this.done) return;
    this.done = true;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
