// Files and folders: a file is read by the connector its extension names; a folder is walked
// recursively (sorted, so runs are reproducible) and filtered with include/exclude globs matched
// against paths relative to the folder.
import { opendir, stat } from 'node:fs/promises';
import path from 'node:path';
import picomatch from 'picomatch';
import { ForgeError } from '../errors.js';
import { type CsvOptions, readCsv } from './csv.js';
import { readDocx } from './docx.js';
import { readJsonArray } from './json-array.js';
import { readJsonl } from './jsonl.js';
import { readPdf } from './pdf.js';
import { readText } from './text.js';
import type { SourceRecord } from './types.js';

export interface FileOptions extends CsvOptions {
  /** Globs a file (relative to the folder) must match; default: every supported extension. */
  include?: string[];
  exclude?: string[];
  /** Called for files of a folder that are left out (unsupported extension). */
  onIgnoredFile?: (file: string, reason: string) => void;
}

type Reader = (file: string, options: FileOptions) => AsyncGenerator<SourceRecord>;

const READERS: Record<string, Reader> = {
  '.jsonl': readJsonl,
  '.ndjson': readJsonl,
  '.json': readJsonArray,
  '.csv': readCsv,
  '.tsv': readCsv,
  '.txt': readText,
  '.text': readText,
  '.md': readText,
  '.markdown': readText,
  '.mdx': readText,
  '.pdf': readPdf,
  '.docx': readDocx,
};

export const SUPPORTED_EXTENSIONS = Object.keys(READERS);

function readerFor(file: string): Reader | undefined {
  return READERS[path.extname(file).toLowerCase()];
}

async function* walk(dir: string): AsyncGenerator<string> {
  const entries = [];
  for await (const entry of await opendir(dir)) entries.push(entry);
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    // Hidden entries (.git, .DS_Store, editors' swap files) are never training data.
    if (entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(full);
    else if (entry.isFile()) yield full;
  }
}

export async function* readFiles(target: string, options: FileOptions = {}): AsyncGenerator<SourceRecord> {
  const info = await stat(target).catch(() => undefined);
  if (!info) {
    throw new ForgeError('NOT_FOUND', `no such file or folder: ${target}`, {
      suggestion: 'check the path given to --path',
    });
  }
  if (info.isFile()) {
    const reader = readerFor(target);
    if (!reader) throw unsupported(target);
    yield* reader(target, options);
    return;
  }
  const include = options.include?.length ? picomatch(options.include, { dot: false }) : undefined;
  const exclude = options.exclude?.length ? picomatch(options.exclude, { dot: true }) : undefined;
  for await (const file of walk(target)) {
    const rel = path.relative(target, file).split(path.sep).join('/');
    if (exclude?.(rel)) continue;
    if (include && !include(rel)) continue;
    const reader = readerFor(file);
    if (!reader) {
      options.onIgnoredFile?.(file, `unsupported extension "${path.extname(file) || '(none)'}"`);
      continue;
    }
    yield* reader(file, options);
  }
}

function unsupported(file: string): ForgeError {
  return new ForgeError('INVALID_ARGUMENT', `cannot read ${file}: unsupported extension "${path.extname(file) || '(none)'}"`, {
    suggestion: `supported: ${SUPPORTED_EXTENSIONS.join(' ')}`,
  });
}
