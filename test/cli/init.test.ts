// `foremforge init` and the config it writes: schema-validated, every key overridable by env,
// never clobbering what is there.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CONFIG_KEYS,
  applyFlags,
  configJsonSchema,
  defaultConfig,
  envName,
  loadConfig,
  validateConfigObject,
} from '../../ts/config/index.js';
import { ROOT, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

describe('foremforge init', () => {
  it('creates the config, folders, sample data and .gitignore, and prints the next commands', async () => {
    const dir = path.join(tempDir(), 'proj');
    const r = await runCli(['init', '--yes', '--dir', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('foremforge train');
    expect(r.stdout).toContain('foremforge data validate examples/sample_qna.jsonl');
    for (const f of [
      'tinyforge.config.json',
      'data',
      '.tinyforge',
      'examples/sample_qna.jsonl',
      'examples/sample_qna.eval.jsonl',
      '.gitignore',
    ]) {
      expect(existsSync(path.join(dir, f)), f).toBe(true);
    }
    expect(readFileSync(path.join(dir, 'examples/sample_qna.jsonl'), 'utf8')).toBe(
      readFileSync(path.join(ROOT, 'examples/sample_qna.jsonl'), 'utf8')
    );
    const gitignore = readFileSync(path.join(dir, '.gitignore'), 'utf8');
    expect(gitignore).toContain('.tinyforge/');
    expect(gitignore).toContain('runs/');
    const loaded = loadConfig({ cwd: path.join(dir, 'data') });
    expect(loaded.file).toBe(path.join(dir, 'tinyforge.config.json'));
    expect(loaded.config).toMatchObject({ data: 'examples/sample_qna.jsonl', base: 'smollm2-135m-instruct', export: { quantize: 'int8' } });
    expect(Object.values(loaded.sources).every((s) => s === 'file')).toBe(true);
    // The written sample passes validation.
    expect((await runCli(['data', 'validate', 'examples/sample_qna.jsonl'], { cwd: dir })).code).toBe(0);
  });

  it('refuses to overwrite an existing config (exit 2, FILE_EXISTS), even with --yes', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'tinyforge.config.json'), '{"epochs": 7}\n');
    const r = await runCli(['init', '--yes', '--dir', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error[FILE_EXISTS]');
    expect(r.stderr).toContain('hint:');
    expect(readFileSync(path.join(dir, 'tinyforge.config.json'), 'utf8')).toBe('{"epochs": 7}\n');
  });

  it('keeps existing samples and .gitignore lines, adding only missing entries', async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'examples'));
    writeFileSync(path.join(dir, 'examples/sample_qna.jsonl'), 'mine\n');
    writeFileSync(path.join(dir, '.gitignore'), 'node_modules\nruns/');
    const r = await runCli(['init', '--yes', '--dir', dir, '--base', '/models/my.gguf', '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.kept).toContain('examples/sample_qna.jsonl');
    expect(readFileSync(path.join(dir, 'examples/sample_qna.jsonl'), 'utf8')).toBe('mine\n');
    expect(readFileSync(path.join(dir, '.gitignore'), 'utf8')).toBe('node_modules\nruns/\n\n# TinyForge\n.tinyforge/\nexports/\n');
    expect(loadConfig({ cwd: dir }).config.base).toBe('/models/my.gguf');
  });
});

describe('config', () => {
  it('has a key for every train/export/serve flag, each with a TINYFORGE_ env name', () => {
    const keys = CONFIG_KEYS.map((k) => k.key);
    for (const k of [
      'base',
      'data',
      'out',
      'epochs',
      'lr',
      'batchSize',
      'gradAccum',
      'loraR',
      'loraAlpha',
      'targetModules',
      'maxSeqLen',
      'evalSplit',
      'seed',
      'export.quantize',
      'serve.port',
      'serve.host',
    ]) {
      expect(keys).toContain(k);
    }
    expect(envName('batchSize')).toBe('TINYFORGE_BATCH_SIZE');
    expect(envName('export.quantize')).toBe('TINYFORGE_EXPORT_QUANTIZE');
    expect(envName('loraR')).toBe('TINYFORGE_LORA_R');
    expect(validateConfigObject(defaultConfig())).toEqual([]);
    const schema = configJsonSchema() as { properties: Record<string, { properties?: Record<string, unknown> }> };
    expect(Object.keys(schema.properties.serve!.properties!)).toEqual(['port', 'host']);
  });

  it('env overrides the file, which overrides the defaults', () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'tinyforge.config.json'), JSON.stringify({ epochs: 5, serve: { port: 9000 } }));
    const { config, sources } = loadConfig({
      cwd: dir,
      env: { TINYFORGE_EPOCHS: '2', TINYFORGE_TARGET_MODULES: 'q_proj, v_proj', TINYFORGE_EXPORT_QUANTIZE: 'none' },
    });
    expect(config).toMatchObject({
      epochs: 2,
      targetModules: ['q_proj', 'v_proj'],
      export: { quantize: 'none' },
      serve: { port: 9000, host: '127.0.0.1' },
      lr: 2e-4,
    });
    expect(sources).toMatchObject({ epochs: 'env', 'serve.port': 'file', lr: 'default' });
  });

  it('command flags win over the config, grouped keys by command', () => {
    const config = defaultConfig();
    const train = applyFlags(config, { epochs: 9, loraR: 16, json: true, lr: undefined });
    expect(train).toMatchObject({ epochs: 9, loraR: 16, lr: 2e-4 });
    expect(applyFlags(config, { port: 9001, host: '0.0.0.0' }, { group: 'serve' }).serve).toEqual({ port: 9001, host: '0.0.0.0' });
    expect(applyFlags(config, { quantize: 'int4' }, { group: 'export' }).export.quantize).toBe('int4');
    expect(config.epochs).toBe(3);
    expect(() => applyFlags(config, { batchSize: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('reports every bad key at once as INVALID_CONFIG', () => {
    const dir = tempDir();
    const file = path.join(dir, 'tinyforge.config.json');
    writeFileSync(file, JSON.stringify({ epochs: 1.5, lr: 'fast', epoch: 3, serve: { port: 70000 }, export: 'int8', targetModules: [] }));
    let err: { code?: string; message?: string } = {};
    try {
      loadConfig({ cwd: dir, env: {} });
    } catch (e) {
      err = e as typeof err;
    }
    expect(err.code).toBe('INVALID_CONFIG');
    for (const key of ['epochs', 'lr', 'epoch', 'serve.port', 'export', 'targetModules']) expect(err.message).toContain(`${key}:`);
    writeFileSync(file, '{ not json');
    expect(() => loadConfig({ cwd: dir, env: {} })).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
    writeFileSync(file, '{}');
    expect(() => loadConfig({ cwd: dir, env: { TINYFORGE_SERVE_PORT: 'eighty' } })).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIG' })
    );
  });
});
