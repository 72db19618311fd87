// A model given as a path is used where it is: an HF folder (with config.json) or a .gguf file.
import { open, readdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ForgeError } from '../errors.js';
import { weightsFile } from './catalog.js';
import { sha256File } from './cache.js';

export interface LocalModel {
  name: string;
  path: string;
  format: 'gguf' | 'hf';
  sha256: string;
}

/** Strings that can only mean a path; others (`org/name`) are a path only if one exists. */
function looksLikePath(arg: string): boolean {
  return /^(\/|\.\.?([/\\]|$)|~([/\\]|$))/.test(arg) || arg.toLowerCase().endsWith('.gguf') || path.isAbsolute(arg);
}

async function hasGgufMagic(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(4);
    await fh.read(buf, 0, 4, 0);
    return buf.toString('latin1') === 'GGUF';
  } finally {
    await fh.close();
  }
}

function bad(arg: string, why: string): ForgeError {
  return new ForgeError('INVALID_ARGUMENT', `${arg}: ${why}`, {
    suggestion: 'pass a folder in the Hugging Face format (config.json, *.safetensors, tokenizer.json) or a .gguf file',
  });
}

/** The model at `arg` if it names one on disk; undefined if `arg` is a name, not a path. */
export async function findLocalModel(arg: string, signal?: AbortSignal): Promise<LocalModel | undefined> {
  const explicit = looksLikePath(arg);
  const resolved = path.resolve(arg.replace(/^~(?=$|[/\\])/, os.homedir()));
  const st = await stat(resolved).catch(() => undefined);
  if (!st) {
    if (explicit) throw bad(arg, 'no such file or folder');
    return undefined;
  }
  if (st.isFile()) {
    if (await hasGgufMagic(resolved)) {
      return { name: path.basename(resolved, '.gguf'), path: resolved, format: 'gguf', sha256: await sha256File(resolved, signal) };
    }
    if (explicit) throw bad(arg, 'not a GGUF file (no GGUF magic)');
    return undefined;
  }
  const entries = await readdir(resolved).catch(() => [] as string[]);
  if (!entries.includes('config.json')) {
    if (explicit) throw bad(arg, 'folder has no config.json');
    return undefined;
  }
  const weights = weightsFile(entries) ?? 'config.json';
  return { name: path.basename(resolved), path: resolved, format: 'hf', sha256: await sha256File(path.join(resolved, weights), signal) };
}
