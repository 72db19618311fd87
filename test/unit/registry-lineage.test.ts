// One-call registration from what train/export/pull leave on disk.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Registry, registerExportFromFolder, registerPulledModel, registerRunFromFolder } from '../../ts/registry/index.js';
import { tempDir } from '../helpers/tmp.js';

const open: Registry[] = [];
afterEach(() => {
  for (const r of open.splice(0)) r.close();
});

function registry(): Registry {
  const r = Registry.open({ home: path.join(tempDir(), 'home') });
  open.push(r);
  return r;
}

function folder(manifest: object, files: Record<string, string> = {}): string {
  const dir = tempDir('tinyforge-artifact-');
  writeFileSync(path.join(dir, 'tinyforge.json'), JSON.stringify(manifest));
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), content);
  }
  return dir;
}

describe('registerRunFromFolder / registerExportFromFolder', () => {
  it('reads the run manifest, hashes and counts the dataset, and links the export to the run', async () => {
    const r = registry();
    const dataDir = tempDir();
    const data = path.join(dataDir, 'train.jsonl');
    const content = '{"input":"a","output":"b"}\n\n{"input":"c","output":"d"}\n';
    writeFileSync(data, content);
    const runDir = folder(
      {
        name: 'tallyfin-v1',
        base: { name: 'smollm2-135m-instruct', path: '/m.gguf', sha256: 'a'.repeat(64) },
        data: data,
        hyperparameters: { epochs: 2, loraR: 8 },
        metrics: { trainLoss: 0.9, evalLoss: 1.1 },
        versions: { candle: '0.11.1' },
        steps: 120,
      },
      { 'adapter/adapter_model.safetensors': 'w'.repeat(64) }
    );
    const run = await registerRunFromFolder(runDir, { registry: r });
    expect(run).toMatchObject({
      kind: 'run',
      name: 'tallyfin-v1',
      baseModel: 'smollm2-135m-instruct',
      baseSha256: 'a'.repeat(64),
      datasetPath: data,
      datasetSha256: createHash('sha256').update(content).digest('hex'),
      datasetRecords: 2,
      hyperparameters: { epochs: 2, loraR: 8 },
      metrics: { trainLoss: 0.9, evalLoss: 1.1 },
      extra: { steps: 120 },
    });
    expect(run.versions.candle).toBe('0.11.1');

    const serviceDir = folder({ run: runDir, quantize: 'int8', metrics: { parityMaxDiff: 0.01 } }, { 'model.onnx': 'o'.repeat(10) });
    const exp = await registerExportFromFolder(serviceDir, { registry: r });
    expect(exp).toMatchObject({
      kind: 'export',
      parentId: run.id,
      baseModel: 'smollm2-135m-instruct',
      baseSha256: 'a'.repeat(64),
      datasetSha256: run.datasetSha256,
      datasetRecords: 2,
      hyperparameters: { epochs: 2, loraR: 8 },
      metrics: { parityMaxDiff: 0.01 },
      extra: { quantize: 'int8' },
    });
    // Registering again (e.g. after a re-export) updates rather than duplicates.
    const again = await registerExportFromFolder(serviceDir, { registry: r });
    expect(again.id).toBe(exp.id);
    expect(r.list()).toHaveLength(2);
  });

  it('a folder without a manifest is a coded error', async () => {
    await expect(registerRunFromFolder(tempDir(), { registry: registry() })).rejects.toMatchObject({ code: 'MANIFEST_MISSING' });
  });

  it('opens the registry in TINYFORGE_HOME when none is given', async () => {
    const home = path.join(tempDir(), 'home');
    const saved = process.env.TINYFORGE_HOME;
    process.env.TINYFORGE_HOME = home;
    try {
      const run = await registerRunFromFolder(folder({ base: 'local-model' }));
      const r = Registry.open({ home });
      open.push(r);
      expect(r.get(run.id).baseModel).toBe('local-model');
    } finally {
      if (saved === undefined) delete process.env.TINYFORGE_HOME;
      else process.env.TINYFORGE_HOME = saved;
    }
  });
});

describe('registerPulledModel', () => {
  it('records the sha256; models at a user path are not owned', async () => {
    const r = registry();
    const cached = await registerPulledModel(
      { name: 'smollm2', path: '/cache/m.gguf', format: 'gguf', sha256: 'f'.repeat(64), source: 'pypi' },
      { registry: r }
    );
    const local = await registerPulledModel(
      { name: 'mine', path: '/home/me/m.gguf', format: 'gguf', sha256: '0'.repeat(64), source: 'local' },
      { registry: r }
    );
    expect(cached).toMatchObject({
      kind: 'base_model',
      baseSha256: 'f'.repeat(64),
      owned: true,
      extra: { format: 'gguf', source: 'pypi' },
    });
    expect(local.owned).toBe(false);
  });
});
