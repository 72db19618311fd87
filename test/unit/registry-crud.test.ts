// The registry on a real SQLite file: register, list, get by id/prefix/name, update in place,
// remove with and without files, migrations recorded, home resolution.
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tinyforgeHome } from '../../ts/config/project.js';
import { DB_FILE, Registry, SCHEMA_VERSION } from '../../ts/registry/index.js';
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

function runFolder(
  files: Record<string, string> = { 'adapter/adapter_model.safetensors': 'x'.repeat(1000), 'tinyforge.json': '{}' }
): string {
  const dir = path.join(tempDir(), 'run');
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), content);
  }
  return dir;
}

describe('Registry', () => {
  it('creates the database in WAL mode with its migrations recorded', () => {
    const r = registry();
    expect(existsSync(path.join(r.home, DB_FILE))).toBe(true);
    expect(r.db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(Number(r.db.pragma('busy_timeout', { simple: true }))).toBeGreaterThan(0);
    const versions = r.db.prepare('SELECT version FROM schema_migrations').all();
    expect(versions).toEqual([{ version: SCHEMA_VERSION }]);
    // Reopening does not migrate again.
    r.close();
    open.pop();
    const again = Registry.open({ home: r.home });
    open.push(again);
    expect(again.db.prepare('SELECT COUNT(*) AS n FROM schema_migrations').get()).toEqual({ n: 1 });
  });

  it('refuses a database from a newer TinyForge', () => {
    const home = path.join(tempDir(), 'home');
    Registry.open({ home }).close();
    const db = new Database(path.join(home, DB_FILE));
    db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(SCHEMA_VERSION + 1, 'later');
    db.close();
    expect(() => Registry.open({ home })).toThrow(expect.objectContaining({ code: 'REGISTRY_TOO_NEW' }));
  });

  it('registers a run with lineage and lists its files and sizes', async () => {
    const r = registry();
    const dir = runFolder();
    const run = await r.registerRun({
      path: dir,
      name: 'first',
      baseModel: { name: 'smollm2-135m-instruct', sha256: 'b'.repeat(64) },
      dataset: { path: '/data/train.jsonl', sha256: 'd'.repeat(64), records: 46 },
      hyperparameters: { epochs: 3, lr: 2e-4 },
      metrics: { evalLoss: 1.25 },
    });
    expect(run.id).toMatch(/^run-[0-9a-f]{12}$/);
    expect(run).toMatchObject({
      kind: 'run',
      name: 'first',
      path: dir,
      owned: true,
      parentId: null,
      baseModel: 'smollm2-135m-instruct',
      baseSha256: 'b'.repeat(64),
      datasetPath: '/data/train.jsonl',
      datasetRecords: 46,
      hyperparameters: { epochs: 3, lr: 2e-4 },
      metrics: { evalLoss: 1.25 },
      sizeBytes: 1002,
    });
    expect(run.versions.node).toBe(process.version);
    expect(run.versions.tinyforge).toMatch(/^\d+\.\d+\.\d+/);
    expect(run.files).toEqual([
      { path: 'adapter/adapter_model.safetensors', size: 1000 },
      { path: 'tinyforge.json', size: 2 },
    ]);
  });

  it('gets by id, id prefix (with or without the kind) and name; ambiguity and absence are coded', async () => {
    const r = registry();
    const a = await r.registerRun({ path: runFolder(), name: 'alpha', files: [] });
    const b = await r.registerExport({ path: runFolder(), name: 'beta', parentId: a.id, files: [] });
    expect(r.get(a.id).id).toBe(a.id);
    expect(r.get(a.id.slice(0, 9)).id).toBe(a.id);
    expect(r.get(b.id.slice(4, 10)).id).toBe(b.id);
    expect(r.get('beta').id).toBe(b.id);
    expect(b.parentId).toBe(a.id);
    expect(() => r.get('nothing-like-it')).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    await r.registerRun({ path: runFolder(), name: 'gamma', files: [] });
    expect(() => r.get('run-')).toThrow(expect.objectContaining({ code: 'AMBIGUOUS_ID' }));
    await expect(r.registerExport({ path: runFolder(), parentId: 'run-000000000000', files: [] })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('lists newest first, filtered by kind', async () => {
    const r = registry();
    const a = await r.registerRun({ path: runFolder(), files: [] });
    await new Promise((res) => setTimeout(res, 5));
    const b = await r.registerBaseModel({ path: '/models/m.gguf', sha256: 'c'.repeat(64), owned: false, files: [] });
    expect(r.list().map((x) => x.id)).toEqual([b.id, a.id]);
    expect(r.list('run').map((x) => x.id)).toEqual([a.id]);
    expect(r.list('base_model')[0]).toMatchObject({ baseSha256: 'c'.repeat(64), owned: false });
  });

  it('registering the same path again updates the row and keeps its id and children', async () => {
    const r = registry();
    const dir = runFolder();
    const first = await r.registerRun({ path: dir, metrics: { loss: 2 } });
    const child = await r.registerExport({ path: runFolder(), parentId: first.id, files: [] });
    const second = await r.registerRun({ path: dir, metrics: { loss: 1 } });
    expect(second.id).toBe(first.id);
    expect(second.metrics).toEqual({ loss: 1 });
    expect(second.createdAt).toBe(first.createdAt);
    expect(r.list('run')).toHaveLength(1);
    expect(r.get(child.id).parentId).toBe(first.id);
  });

  it('remove deletes the row, and the files only when asked and owned', async () => {
    const r = registry();
    const kept = runFolder();
    const gone = runFolder();
    const notOwned = runFolder();
    const a = await r.registerRun({ path: kept });
    const b = await r.registerRun({ path: gone });
    const c = await r.registerBaseModel({ path: notOwned, sha256: 'e'.repeat(64), owned: false });
    const child = await r.registerExport({ path: runFolder(), parentId: b.id, files: [] });
    expect(await r.remove(a.id)).toMatchObject({ deletedFiles: false });
    expect(existsSync(kept)).toBe(true);
    expect(await r.remove(b.id, { deleteFiles: true })).toMatchObject({ deletedFiles: true });
    expect(existsSync(gone)).toBe(false);
    expect(await r.remove(c.id, { deleteFiles: true })).toMatchObject({ deletedFiles: false });
    expect(existsSync(notOwned)).toBe(true);
    expect(r.list().map((x) => x.id)).toEqual([child.id]);
    expect(r.get(child.id).parentId).toBeNull();
    expect(r.db.prepare('SELECT COUNT(*) AS n FROM artifact_files').get()).toEqual({ n: 0 });
  });

  it('never deletes a root, home or working folder', async () => {
    const r = registry();
    const a = await r.registerRun({ path: os.homedir(), files: [] });
    await expect(r.remove(a.id, { deleteFiles: true })).rejects.toMatchObject({ code: 'UNSAFE_DELETE' });
    const b = await r.registerRun({ path: '/', files: [] });
    await expect(r.remove(b.id, { deleteFiles: true })).rejects.toMatchObject({ code: 'UNSAFE_DELETE' });
    // A refused delete leaves the rows in place.
    expect(
      r
        .list()
        .map((x) => x.id)
        .sort()
    ).toEqual([a.id, b.id].sort());
  });
});

describe('tinyforgeHome', () => {
  it('is TINYFORGE_HOME, else .tinyforge in the project found upwards, else ~/.tinyforge', () => {
    const project = tempDir();
    writeFileSync(path.join(project, 'tinyforge.config.json'), '{}');
    const deep = path.join(project, 'a', 'b');
    mkdirSync(deep, { recursive: true });
    expect(tinyforgeHome({ cwd: deep, env: {} })).toBe(path.join(project, '.tinyforge'));
    expect(tinyforgeHome({ cwd: deep, env: { TINYFORGE_HOME: '/x/y' } })).toBe('/x/y');
    expect(tinyforgeHome({ cwd: os.tmpdir(), env: {} })).toBe(path.join(os.homedir(), '.tinyforge'));
  });
});
