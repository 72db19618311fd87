// The service folder `foremforge export` writes (service-template/ + vendor/): its files, the
// packed serve modules byte-identical to the build (so server.mjs cannot drift from `foremforge
// serve`), the same flags, the Dockerfile's content (docker build itself is not run: no daemon
// here), --overwrite replacing all of it, and the folder standing alone: copied under os.tmpdir()
// with no TinyForge checkout above it, the README's own commands install it from npm and start
// it, /predict answers, the Dockerfile's health check passes, SIGTERM exits 0.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createTinyModel } from '@tinyforge/native';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVE_NPM_DEPENDENCIES, nativePackageDir, packServeModules, serveModules } from '../../ts/pipeline/export-service-pack.js';
import { SERVICE_FILES, renderDockerfile, serviceTemplateDir } from '../../ts/pipeline/export-service.js';
import { CLI, ROOT, runCli } from '../helpers/cli.js';
import { FOLDER, MODEL_FILES, tree } from '../helpers/export-fixture.js';
import { waitFor } from './helpers.js';

let fx: { dir: string; home: string; base: string; out: string };

beforeAll(async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tinyforge-service-'));
  const base = path.join(dir, 'base');
  await createTinyModel(base, { seed: 7 });
  const fixture = { dir, home: path.join(dir, 'home'), base, out: path.join(dir, 'my-model') };
  const r = await runCli(['export', '--model', base, '--out', fixture.out], { env: { TINYFORGE_HOME: fixture.home } });
  expect(r.code, r.stderr).toBe(0);
  fx = fixture;
}, 120_000);

afterAll(() => {
  if (fx) rmSync(fx.dir, { recursive: true, force: true });
});

const read = (...p: string[]): string => readFileSync(path.join(...p), 'utf8');
// biome-ignore lint/suspicious/noExplicitAny: package.json files are read as loose JSON.
const json = (...p: string[]): Record<string, any> => JSON.parse(read(...p));

/** Extracts a vendor/*.tar with the system tar (an independent reader of the archive). */
function untar(file: string): string {
  const dest = mkdtempSync(path.join(fx.dir, 'untar-'));
  const r = spawnSync('tar', ['-xf', file, '-C', dest], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return path.join(dest, 'package');
}

describe('the service files of an export folder', () => {
  it('are written beside the model files and listed in tinyforge.json', () => {
    expect(tree(fx.out)).toEqual(FOLDER);
    const listed = Object.keys(json(fx.out, 'tinyforge.json').files);
    for (const f of SERVICE_FILES) expect(listed).toContain(f);
    for (const f of ['server.mjs', '.npmrc', '.dockerignore', 'README.md']) expect(read(fx.out, f), f).toBe(read(serviceTemplateDir(), f));
  });

  it('pack the serve modules byte-identical to dist/, so server.mjs runs the code `foremforge serve` runs', () => {
    const pkg = untar(path.join(fx.out, 'vendor/tinyforge.tar'));
    const modules = serveModules();
    expect(tree(pkg)).toEqual(['package.json', ...modules.files].sort());
    for (const f of ['dist/cli/commands/serve.js', 'dist/ts/serve/server.js', 'dist/ts/serve/service.js', 'dist/ts/serve/engines/ort.js'])
      expect(modules.files).toContain(f);
    for (const f of modules.files) expect(readFileSync(path.join(pkg, f)).equals(readFileSync(path.join(ROOT, f))), f).toBe(true);
    expect(json(pkg, 'package.json')).toMatchObject({ name: 'tinyforge', version: json(ROOT, 'package.json').version, type: 'module' });
    // Deterministic: packing the current build again gives the same bytes as the shipped file.
    expect(packServeModules().tar.equals(readFileSync(path.join(fx.out, 'vendor/tinyforge.tar')))).toBe(true);
  });

  it('pack the native addon and its loader byte-identical to the @tinyforge/native the CLI loads', () => {
    const pkg = untar(path.join(fx.out, 'vendor/tinyforge-native.tar'));
    const files = tree(pkg);
    expect(files).toEqual(expect.arrayContaining(['package.json', 'index.cjs', 'index.mjs', 'binding.cjs']));
    expect(files.some((f) => f.endsWith('.node'))).toBe(true);
    for (const f of files) expect(readFileSync(path.join(pkg, f)).equals(readFileSync(path.join(nativePackageDir(), f))), f).toBe(true);
  });

  it('pin the npm dependencies to the versions TinyForge uses, in the template and in the folder', () => {
    const rootDeps = json(ROOT, 'package.json').dependencies;
    for (const pkg of [json(fx.out, 'package.json'), json(serviceTemplateDir(), 'package.json')]) {
      expect(pkg.dependencies).toEqual({
        '@tinyforge/native': 'file:vendor/tinyforge-native.tar',
        '@trufflesuite/uws-js-unofficial': rootDeps['@trufflesuite/uws-js-unofficial'],
        commander: rootDeps.commander,
        'prom-client': rootDeps['prom-client'],
        tinyforge: 'file:vendor/tinyforge.tar',
      });
    }
    // Static imports only (native.ts and uws.ts load theirs through createRequire): the rest is
    // proven by the standalone run below.
    expect(['@tinyforge/native', ...SERVE_NPM_DEPENDENCIES]).toEqual(expect.arrayContaining(serveModules().packages));
    expect(serveModules().packages).toContain('prom-client');
  });

  it('have a Dockerfile on a slim pinned base, non-root, with a /health check, copying only what the service reads', () => {
    const docker = read(fx.out, 'Dockerfile');
    const lines = docker.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
    const from = lines.find((l) => l.startsWith('FROM '));
    expect(from).toMatch(/^FROM node:20-[a-z]+-slim$/);
    const user = lines.findIndex((l) => l.startsWith('USER '));
    expect(user).toBeGreaterThan(0);
    expect(lines[user]).not.toMatch(/^USER (root|0)\b/);
    expect(lines.findIndex((l) => l.startsWith('CMD '))).toBeGreaterThan(user);
    expect(docker).toMatch(/^HEALTHCHECK .*\\\n\s+CMD \[.*\/health/m);
    expect(docker).toMatch(/^EXPOSE 8001$/m);
    expect(docker).toMatch(/^CMD \["node", "server.mjs", "--host", "0.0.0.0"\]$/m);
    const copied = lines
      .filter((l) => l.startsWith('COPY '))
      .flatMap((l) => l.split(/\s+/).slice(1, -1))
      .map((s) => s.replace(/\/$/, ''));
    const needed = ['package.json', '.npmrc', 'vendor', 'server.mjs', ...MODEL_FILES];
    expect(copied.sort()).toEqual(needed.sort());
    for (const c of copied) expect(existsSync(path.join(fx.out, c)), c).toBe(true);
    expect(read(fx.out, '.dockerignore').split('\n')).toContain('node_modules');
    // The COPY of the model follows --quantize.
    expect(renderDockerfile(read(serviceTemplateDir(), 'Dockerfile'), 'onnx/model_q4.onnx')).toMatch(
      /^COPY onnx\/model_q4.onnx \.\/onnx\/$/m
    );
    // ...with its external data file when it has one.
    expect(renderDockerfile(read(serviceTemplateDir(), 'Dockerfile'), 'onnx/model_q4.onnx', 'onnx/model_q4.onnx_data')).toMatch(
      /^COPY onnx\/model_q4.onnx onnx\/model_q4.onnx_data \.\/onnx\/$/m
    );
  });

  it('is replaced whole by --overwrite: added files go, edited service files come back', async () => {
    const out = path.join(fx.dir, 'overwritten');
    cpSync(fx.out, out, { recursive: true });
    mkdirSync(path.join(out, 'node_modules/leftover'), { recursive: true });
    writeFileSync(path.join(out, 'server.mjs'), '// edited\n');
    const r = await runCli(['export', '--model', fx.base, '--out', out, '--overwrite'], { env: { TINYFORGE_HOME: fx.home } });
    expect(r.code, r.stderr).toBe(0);
    expect(tree(out)).toEqual(FOLDER);
    expect(read(out, 'server.mjs')).toBe(read(serviceTemplateDir(), 'server.mjs'));
  });
});

/** The long flags a --help text lists. */
const helpFlags = (help: string): string[] => [...help.matchAll(/^\s+(?:-\w, )?(--[\w-]+)/gm)].map((m) => m[1]!).sort();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The environment of a user's shell: nothing inherited from npm/npx/vitest that points at this repo. */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^(npm_|NODE_PATH$|NODE_OPTIONS$|INIT_CWD$|VITEST)/i.test(k)) env[k] = v;
  }
  return { ...env, LOG_LEVEL: 'info', ...extra };
}

/** The commands of the README's first ```sh block (comments dropped). */
function readmeCommands(readme: string): string[][] {
  const block = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  return block
    .split('\n')
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter(Boolean)
    .map((l) => l.split(/\s+/));
}

function startServer(
  dir: string,
  args: string[],
  env: NodeJS.ProcessEnv
): { proc: ChildProcess; exit: Promise<number | null>; log: () => string } {
  const proc = spawn(args[0]!, args.slice(1), { cwd: dir, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exit = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return { proc, exit, log: () => log };
}

describe('the service folder standing alone', () => {
  it('installs with the README command and serves /predict from a copy with no TinyForge checkout above it', async () => {
    const alone = path.join(mkdtempSync(path.join(os.tmpdir(), 'tinyforge-alone-')), 'svc');
    cpSync(fx.out, alone, { recursive: true });
    try {
      // Module resolution walks up from the folder: no node_modules may be found above it.
      expect(alone.startsWith(ROOT + path.sep)).toBe(false);
      for (let d = path.dirname(alone); d !== path.dirname(d); d = path.dirname(d))
        expect(existsSync(path.join(d, 'node_modules')), `${d}/node_modules`).toBe(false);

      const [install, run] = readmeCommands(read(alone, 'README.md'));
      expect(install?.slice(0, 2)).toEqual(['npm', 'install']);
      expect(run).toEqual(['node', 'server.mjs']);
      const t0 = performance.now();
      const npm = spawnSync(install![0]!, install!.slice(1), { cwd: alone, env: cleanEnv(), encoding: 'utf8', timeout: 300_000 });
      expect(npm.status, `${npm.stdout}\n${npm.stderr}`).toBe(0);
      console.log(`npm install of the service folder: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      // npm 11 skips dependency install scripts; npm 10 (the node:20 image's) runs them, and
      // onnxruntime-node's would fetch CUDA files from NuGet unless the folder's .npmrc says skip.
      // Run it the way npm runs it, with the folder's npm config in the environment.
      const postinstall = spawnSync('npm', ['exec', '--offline', '--', 'node', 'node_modules/onnxruntime-node/script/install'], {
        cwd: alone,
        env: cleanEnv(),
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(postinstall.status, postinstall.stderr).toBe(0);
      const resolved = spawnSync(
        process.execPath,
        ['-p', "require.resolve('@tinyforge/native') + ' ' + require.resolve('tinyforge/package.json')"],
        {
          cwd: alone,
          env: cleanEnv(),
          encoding: 'utf8',
        }
      );
      for (const p of resolved.stdout.trim().split(' ')) expect(p.startsWith(path.join(alone, 'node_modules'))).toBe(true);

      // The same flags as `foremforge serve`: server.mjs runs its command object.
      const help = spawnSync(process.execPath, ['server.mjs', '--help'], { cwd: alone, env: cleanEnv(), encoding: 'utf8' });
      const serveHelp = spawnSync(process.execPath, [CLI, 'serve', '--help'], { encoding: 'utf8' });
      expect(help.status, help.stderr).toBe(0);
      expect(helpFlags(serveHelp.stdout)).toContain('--api-key-file');
      expect(helpFlags(help.stdout)).toEqual(helpFlags(serveHelp.stdout));

      // The README's run command as is; the port comes from the variable the Docker image sets.
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const env = { TINYFORGE_SERVE_PORT: String(port), TINYFORGE_API_KEY: 'k-123' };
      const server = startServer(alone, [process.execPath, ...run!.slice(1)], env);
      let healthCheck = (): number | null => null;
      try {
        await waitFor(
          '/ready',
          async () => (await fetch(`${url}/ready`, { headers: { Authorization: 'Bearer k-123' } }).catch(() => null))?.status === 200,
          60_000
        );
        const health = (await (await fetch(`${url}/health`)).json()) as { transport: string };
        expect(health.transport).toBe('native');
        const ask = (key?: string) =>
          fetch(`${url}/predict`, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', ...(key ? { Authorization: `Bearer ${key}` } : {}) },
            body: JSON.stringify({ text: 'What is the capital of France?', max_tokens: 8 }),
          });
        expect((await ask()).status).toBe(401);
        const res = await ask('k-123');
        const body = (await res.json()) as { output: unknown; confidence: unknown };
        expect(res.status, JSON.stringify(body)).toBe(200);
        expect(typeof body.output).toBe('string');
        expect(body.confidence).toBeGreaterThan(0);
        expect(body.confidence).toBeLessThanOrEqual(1);
        // The Dockerfile's HEALTHCHECK command, run as the image would.
        const check = /^HEALTHCHECK [^\n]*\\\n\s+CMD (\[.*\])$/m.exec(read(alone, 'Dockerfile'))?.[1];
        const argv = JSON.parse(check ?? '[]') as string[];
        expect(argv[0]).toBe('node');
        healthCheck = () => spawnSync(process.execPath, argv.slice(1), { cwd: alone, env: cleanEnv(env), encoding: 'utf8' }).status;
        expect(healthCheck()).toBe(0);
      } finally {
        server.proc.kill('SIGTERM');
      }
      expect(await server.exit, server.log()).toBe(0);
      expect(healthCheck()).toBe(1);
    } finally {
      rmSync(path.dirname(alone), { recursive: true, force: true });
    }
  }, 400_000);
});
