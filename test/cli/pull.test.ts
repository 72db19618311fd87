// `foremforge pull` as a user runs it, against the local hub server.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { type HubServer, sha256, startHubServer, tinyRepo } from '../helpers/hub-server.js';
import { tempDir } from '../helpers/tmp.js';

let hub: HubServer | undefined;

afterEach(async () => {
  await hub?.close();
  hub = undefined;
});

function env(cache: string): NodeJS.ProcessEnv {
  return {
    TINYFORGE_HOME: path.join(cache, 'home'),
    TINYFORGE_CACHE: cache,
    HF_HUB_CACHE: tempDir('tinyforge-hf-empty-'),
    HF_ENDPOINT: 'http://127.0.0.1:1',
    HF_TOKEN: '',
  };
}

describe('foremforge pull', () => {
  it('downloads from the hub and prints the result as JSON (exit 0), then serves it from the cache', async () => {
    const repo = tinyRepo();
    hub = await startHubServer({ repos: { 'acme/tiny': repo } });
    const cache = tempDir();
    const r = await runCli(['pull', 'acme/tiny', '--json', '--endpoint', hub.url], { env: env(cache) });
    expect(r.code, r.stderr).toBe(0);
    const { registryId, ...result } = JSON.parse(r.stdout);
    expect(result).toEqual({
      name: 'acme--tiny',
      path: path.join(cache, 'models', 'acme--tiny', 'hf'),
      format: 'hf',
      sha256: sha256(repo['model.safetensors']!),
      source: 'hub',
    });
    // The pulled base model is in the registry with its hash (lineage starts here).
    const listed = await runCli(['models', 'show', registryId, '--json'], { env: env(cache) });
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(result.sha256);
    // stderr is not a terminal here: plain lines, no carriage returns.
    expect(r.stderr).toContain('downloaded model.safetensors');
    expect(r.stderr).not.toContain('\r');

    const again = await runCli(['pull', 'acme/tiny', '--endpoint', hub.url], { env: env(cache) });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain(result.path);
    expect(again.stdout).toContain(result.sha256);
    expect(again.stdout).toContain('from cache');
  });

  it('takes the endpoint from HF_ENDPOINT', async () => {
    hub = await startHubServer({ repos: { 'acme/tiny': tinyRepo() } });
    const r = await runCli(['pull', 'acme/tiny', '--json'], { env: { ...env(tempDir()), HF_ENDPOINT: hub.url } });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).source).toBe('hub');
  });

  it('exits 1 with MODEL_UNAVAILABLE and the list of sources when nothing works', async () => {
    hub = await startHubServer({ repos: {} });
    const cache = tempDir();
    const r = await runCli(['pull', 'acme/tiny', '--endpoint', hub.url], { env: env(cache) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error[MODEL_UNAVAILABLE]');
    expect(r.stderr).toContain('hint:');
    expect(existsSync(path.join(cache, 'models', 'acme--tiny', 'hf'))).toBe(false);
  });

  it('exits 1 for the default model with hub and PyPI disabled', async () => {
    const r = await runCli(['pull', '--no-hub', '--no-pypi'], { env: env(tempDir()) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error[MODEL_UNAVAILABLE]');
  });

  it('exits 2 on bad usage', async () => {
    const cache = tempDir();
    expect((await runCli(['pull', 'not-a-model'], { env: env(cache) })).code).toBe(2);
    expect((await runCli(['pull', './no/such/dir'], { env: env(cache) })).code).toBe(2);
    expect((await runCli(['pull', '--format', 'onnx'], { env: env(cache) })).code).toBe(2);
    expect((await runCli(['pull', '--bogus'], { env: env(cache) })).code).toBe(2);
  });
});
