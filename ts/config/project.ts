// Where things live: the project root (the nearest folder up from cwd holding
// tinyforge.config.json), the TinyForge home (registry and state), and this package's own root
// (for files init copies, like examples/sample_qna.jsonl).
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CONFIG_FILE = 'tinyforge.config.json';
export const HOME_DIR = '.tinyforge';

/** The nearest folder at or above `start` that holds tinyforge.config.json, or undefined. */
export function findProjectRoot(start = process.cwd()): string | undefined {
  let dir = path.resolve(start);
  for (;;) {
    if (existsSync(path.join(dir, CONFIG_FILE))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * The TinyForge home: `$TINYFORGE_HOME`, else `<project>/.tinyforge` inside a project, else
 * `~/.tinyforge`. The registry database lives here.
 */
export function tinyforgeHome(options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const env = options.env ?? process.env;
  if (env.TINYFORGE_HOME) return path.resolve(env.TINYFORGE_HOME);
  const root = findProjectRoot(options.cwd);
  return root ? path.join(root, HOME_DIR) : path.join(os.homedir(), HOME_DIR);
}

let cachedPackageRoot: string | undefined;

/** This package's root (where its package.json named "tinyforge" is), from src or dist alike. */
export function packageRoot(): string {
  if (cachedPackageRoot) return cachedPackageRoot;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'tinyforge') {
      cachedPackageRoot = dir;
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`tinyforge package root not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** The version of this package, for lineage records. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
