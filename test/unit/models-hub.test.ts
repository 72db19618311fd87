// Downloads over the HF hub protocol, against a real HTTP server on 127.0.0.1.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ModelUnavailableError, pullModel } from '../../ts/models/pull.js';
import { type HubServer, sha256, startHubServer, tinyRepo } from '../helpers/hub-server.js';
import { tempDir } from '../helpers/tmp.js';
import { rejection } from '../helpers/errors.js';

let hub: HubServer | undefined;
const savedEnv = { ...process.env };

beforeEach(() => {
  // No real HF cache or token may leak into these tests.
  process.env.HF_HUB_CACHE = tempDir('tinyforge-hf-empty-');
  delete process.env.HF_TOKEN;
  delete process.env.HF_HUB_OFFLINE;
});

afterEach(async () => {
  await hub?.close();
  hub = undefined;
  process.env = { ...savedEnv };
});

function finalDir(cacheDir: string): string {
  return path.join(cacheDir, 'models', 'acme--tiny', 'hf');
}

function partFile(cacheDir: string, file: string): string {
  return path.join(cacheDir, 'models', 'acme--tiny', '.partial', 'hf', `${file}.part`);
}

describe('pullModel from the hub', () => {
  it('downloads every file, records each sha256, and serves the second pull from the cache', async () => {
    const repo = tinyRepo();
    hub = await startHubServer({ repos: { 'acme/tiny': repo } });
    const cacheDir = tempDir();
    const first = await pullModel('acme/tiny', { cacheDir, endpoint: hub.url });
    expect(first).toEqual({
      name: 'acme--tiny',
      path: finalDir(cacheDir),
      format: 'hf',
      sha256: sha256(repo['model.safetensors']!),
      source: 'hub',
    });
    for (const [file, content] of Object.entries(repo)) {
      expect(readFileSync(path.join(first.path, file))).toEqual(Buffer.from(content));
    }
    // special_tokens_map.json is optional and the repo lacks it: a 404 there is fine.
    expect(existsSync(path.join(first.path, 'special_tokens_map.json'))).toBe(false);
    const manifest = JSON.parse(readFileSync(path.join(cacheDir, 'models', 'acme--tiny', 'hf.json'), 'utf8'));
    for (const [file, content] of Object.entries(repo)) {
      expect(manifest.files[file]).toEqual({ sha256: sha256(content), size: Buffer.from(content).length });
    }
    expect(manifest.revision).toBe('a'.repeat(40)); // X-Repo-Commit, not the branch name

    const seen = hub.requests.length;
    const second = await pullModel('acme/tiny', { cacheDir, endpoint: hub.url });
    expect(second).toEqual({ ...first, source: 'cache' });
    expect(hub.requests.length).toBe(seen);
  });

  it('reports a missing repo as MODEL_UNAVAILABLE listing each source tried', async () => {
    hub = await startHubServer({ repos: {} });
    const cacheDir = tempDir();
    const err = await rejection<ModelUnavailableError>(pullModel('acme/tiny', { cacheDir, endpoint: hub.url }));
    expect(err.code).toBe('MODEL_UNAVAILABLE');
    expect(err.suggestion).toMatch(/HF_ENDPOINT/);
    expect(err.attempts.map((a) => [a.source, a.code])).toEqual([
      ['hf-cache', 'NOT_FOUND'],
      ['cache', 'NOT_FOUND'],
      ['hub', 'NOT_FOUND'],
      ['pypi', 'SKIPPED'],
    ]);
    expect(existsSync(finalDir(cacheDir))).toBe(false);
  });

  it('resumes a transfer cut halfway with a Range request', async () => {
    const repo = tinyRepo(256 * 1024);
    hub = await startHubServer({ repos: { 'acme/tiny': repo }, cutOnce: 'model.safetensors' });
    const cacheDir = tempDir();
    const got = await pullModel('acme/tiny', { cacheDir, endpoint: hub.url });
    expect(got.sha256).toBe(sha256(repo['model.safetensors']!));
    const weightRequests = hub.requests.filter((r) => r.url.endsWith('/model.safetensors'));
    expect(weightRequests.length).toBe(2);
    expect(weightRequests[0]!.headers.range).toBeUndefined();
    expect(weightRequests[1]!.headers.range).toMatch(/^bytes=[1-9]\d*-$/);
    expect(readFileSync(path.join(got.path, 'model.safetensors'))).toEqual(repo['model.safetensors']);
  });

  it('fails cleanly when transfers keep breaking, keeps the .part, and resumes it on the next pull', async () => {
    const repo = tinyRepo(256 * 1024);
    hub = await startHubServer({ repos: { 'acme/tiny': repo }, cutAlways: 'model.safetensors' });
    const cacheDir = tempDir();
    const err = await rejection<ModelUnavailableError>(pullModel('acme/tiny', { cacheDir, endpoint: hub.url }));
    expect(err.code).toBe('MODEL_UNAVAILABLE');
    expect(err.attempts.find((a) => a.source === 'hub')?.code).toBe('NETWORK');
    expect(existsSync(finalDir(cacheDir))).toBe(false);
    const partSize = statSync(partFile(cacheDir, 'model.safetensors')).size;
    expect(partSize).toBeGreaterThan(0);
    expect(partSize).toBeLessThan(256 * 1024);

    hub.options.cutAlways = undefined;
    hub.requests.length = 0;
    const got = await pullModel('acme/tiny', { cacheDir, endpoint: hub.url });
    expect(got.sha256).toBe(sha256(repo['model.safetensors']!));
    const resumed = hub.requests.filter((r) => r.url.endsWith('/model.safetensors'));
    expect(resumed.map((r) => r.headers.range)).toEqual([`bytes=${partSize}-`]);
  });

  it('rejects a file whose sha256 differs from the announced one and leaves nothing in place', async () => {
    hub = await startHubServer({ repos: { 'acme/tiny': tinyRepo() }, wrongSha256: 'f'.repeat(64) });
    const cacheDir = tempDir();
    const err = await rejection<ModelUnavailableError>(pullModel('acme/tiny', { cacheDir, endpoint: hub.url }));
    expect(err.code).toBe('MODEL_UNAVAILABLE');
    expect(err.attempts.find((a) => a.source === 'hub')?.code).toBe('CHECKSUM_MISMATCH');
    expect(existsSync(finalDir(cacheDir))).toBe(false);
    expect(existsSync(path.join(cacheDir, 'models', 'acme--tiny', 'hf.json'))).toBe(false);
    expect(existsSync(partFile(cacheDir, 'model.safetensors'))).toBe(false);
  });

  it('follows the redirect to a CDN, checks X-Linked-Etag, and sends HF_TOKEN only to the hub', async () => {
    const repo = tinyRepo();
    hub = await startHubServer({ repos: { 'acme/tiny': repo }, redirectLfs: true });
    process.env.HF_TOKEN = 'hf_test_token';
    const cacheDir = tempDir();
    const got = await pullModel('acme/tiny', { cacheDir, endpoint: hub.url });
    expect(got.sha256).toBe(sha256(repo['model.safetensors']!));
    const cdn = hub.requests.filter((r) => r.server === 'cdn');
    expect(cdn.length).toBe(1);
    expect(cdn[0]!.headers.authorization).toBeUndefined();
    for (const r of hub.requests.filter((x) => x.server === 'hub')) {
      expect(r.headers.authorization).toBe('Bearer hf_test_token');
    }
  });

  it('a wrong sha256 behind a redirect is caught too', async () => {
    hub = await startHubServer({ repos: { 'acme/tiny': tinyRepo() }, redirectLfs: true, wrongSha256: '0'.repeat(64) });
    const cacheDir = tempDir();
    const err = await rejection<ModelUnavailableError>(pullModel('acme/tiny', { cacheDir, endpoint: hub.url }));
    expect(err.attempts.find((a) => a.source === 'hub')?.code).toBe('CHECKSUM_MISMATCH');
    expect(existsSync(finalDir(cacheDir))).toBe(false);
  });

  it('stops on abort, keeping the .part for a later resume', async () => {
    hub = await startHubServer({ repos: { 'acme/tiny': tinyRepo(4 * 1024 * 1024) } });
    const cacheDir = tempDir();
    const controller = new AbortController();
    const progress: number[] = [];
    const err = await rejection<ModelUnavailableError>(
      pullModel('acme/tiny', {
        cacheDir,
        endpoint: hub.url,
        signal: controller.signal,
        onProgress: (p) => {
          if (p.file !== 'model.safetensors') return;
          progress.push(p.received);
          if (p.received > 0) controller.abort();
        },
      })
    );
    expect(err.code).toBe('ABORTED');
    expect(progress.length).toBeGreaterThan(0);
    expect(existsSync(finalDir(cacheDir))).toBe(false);
    expect(readdirSync(path.dirname(partFile(cacheDir, 'x')))).toContain('model.safetensors.part');
  });

  it('re-downloads when a cached file was changed after the pull', async () => {
    const repo = tinyRepo();
    hub = await startHubServer({ repos: { 'acme/tiny': repo } });
    const cacheDir = tempDir();
    const first = await pullModel('acme/tiny', { cacheDir, endpoint: hub.url });
    writeFileSync(path.join(first.path, 'model.safetensors'), Buffer.alloc(64 * 1024)); // same size, other bytes
    const second = await pullModel('acme/tiny', { cacheDir, endpoint: hub.url });
    expect(second.source).toBe('hub');
    expect(readFileSync(path.join(second.path, 'model.safetensors'))).toEqual(repo['model.safetensors']);
  });

  it('lets one of two concurrent pulls download while the other waits and then uses the cache', async () => {
    hub = await startHubServer({ repos: { 'acme/tiny': tinyRepo(1024 * 1024) } });
    const cacheDir = tempDir();
    const [a, b] = await Promise.all([
      pullModel('acme/tiny', { cacheDir, endpoint: hub.url }),
      pullModel('acme/tiny', { cacheDir, endpoint: hub.url }),
    ]);
    expect([a.source, b.source].sort()).toEqual(['cache', 'hub']);
    expect(hub.requests.filter((r) => r.url.endsWith('/model.safetensors')).length).toBe(1);
  });

  it('takes over a lock left by a process that is gone', async () => {
    hub = await startHubServer({ repos: { 'acme/tiny': tinyRepo() } });
    const cacheDir = tempDir();
    const lock = path.join(cacheDir, 'models', 'acme--tiny', '.lock');
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    mkdirSync(lock, { recursive: true });
    writeFileSync(path.join(lock, 'owner.json'), JSON.stringify({ pid: dead, host: hostname() }));
    const got = await pullModel('acme/tiny', { cacheDir, endpoint: hub.url });
    expect(got.source).toBe('hub');
    expect(existsSync(lock)).toBe(false);
  });
});
