// `foremforge train` with no hyperparameter flags on a tiny random model: the recipe block is
// printed and recorded in tinyforge.json, the shipped rehearsal passages are in the run's
// rehearsal.jsonl (each trained once: every epoch takes all the records and its own slice), a
// flag overrides its field (and is listed as a flag), and --no-recipe leaves the trainer's fixed
// defaults.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTinyModel } from '@tinyforge/native';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const QA = Array.from({ length: 12 }, (_, i) => ({ input: `Which code has item ${i}?`, output: `Item ${i} has code ${100 + i * 3}.` }));

let fx: { dir: string; base: string; data: string };

beforeAll(async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tinyforge-recipe-'));
  const base = path.join(dir, 'base');
  await createTinyModel(base, { seed: 5 });
  const data = path.join(dir, 'data.jsonl');
  writeFileSync(data, `${QA.map((r) => JSON.stringify(r)).join('\n')}\n`);
  fx = { dir, base, data };
}, 60_000);

interface Manifest {
  recipe?: { values: Record<string, unknown>; fromFlags: string[]; reasons: string[] };
}

describe('train: the data-driven recipe', () => {
  it('no hyperparameter flags: prints and records the recipe; --rehearsal adds passages', async () => {
    const out = path.join(fx.dir, 'run');
    const r = await runCli(['train', '--data', fx.data, '--out', out, '--base', fx.base, '--max-steps', '3', '--rehearsal', '16']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/recipe for 12 records, \d+ tokens/);
    expect(r.stdout).toContain('all 7 projections');
    expect(r.stdout).toContain('rehearsal 16 (flag)');
    const m = JSON.parse(readFileSync(path.join(out, 'tinyforge.json'), 'utf8')) as Manifest;
    expect(m.recipe?.values.lr).toBe(2e-3);
    expect(m.recipe?.values.targetModules).toHaveLength(7);
    expect(m.recipe?.fromFlags).toEqual(['epochs', 'rehearsal']);
    // No rewording: the records are trained from the user's file; the passages from their own.
    expect(existsSync(path.join(out, 'train-data.jsonl'))).toBe(false);
    const passages = readFileSync(path.join(out, 'rehearsal.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(passages).toHaveLength(16);
    for (const p of passages) expect(p._rehearsal === true && typeof p.text === 'string').toBe(true);
    const adapter = JSON.parse(readFileSync(path.join(out, 'adapter/adapter_config.json'), 'utf8')) as {
      r: number;
      target_modules: string[];
    };
    expect(adapter.r).toBe(16);
    expect(adapter.target_modules).toHaveLength(7);
  }, 180_000);

  it('no flags: 10 epochs over the records, each taking its own slice of the 60 shipped passages', async () => {
    const out = path.join(fx.dir, 'run-default');
    const r = await runCli(['train', '--data', fx.data, '--out', out, '--base', fx.base, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const t = JSON.parse(r.stdout) as { steps: number; trainExamples: number; recipe: { recipe: { epochs: number; rehearsal: number } } };
    expect(t.recipe.recipe.epochs).toBe(10);
    expect(t.recipe.recipe.rehearsal).toBe(60);
    const passages = readFileSync(path.join(out, 'rehearsal.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { text: string }).text);
    expect(new Set(passages).size).toBe(60);
    const shipped = readFileSync(path.join(process.cwd(), 'data/general-replay.txt'), 'utf8');
    for (const p of passages) expect(shipped.replace(/\s+/g, ' ')).toContain(p);
    // Each epoch: the 12 records and 6 passages, batches of 4 = 5 steps; 10 epochs.
    expect(t.trainExamples).toBe(12 + 60);
    expect(t.steps).toBe(10 * Math.ceil((12 + 6) / 4));
    // --dry-run plans the same steps (passages included) and creates no run folder.
    const dryOut = path.join(fx.dir, 'run-dry');
    const d = await runCli(['train', '--data', fx.data, '--out', dryOut, '--base', fx.base, '--dry-run']);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toContain(`steps: 5 per epoch, ${t.steps} total`);
    expect(existsSync(dryOut)).toBe(false);
  }, 180_000);

  it('a flag overrides its field; --no-recipe keeps the fixed defaults', async () => {
    const out = path.join(fx.dir, 'run-flags');
    const r = await runCli(['train', '--data', fx.data, '--out', out, '--base', fx.base, '--max-steps', '2', '--lora-r', '4']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('r 4 (flag)');
    const m = JSON.parse(readFileSync(path.join(out, 'tinyforge.json'), 'utf8')) as Manifest;
    expect(m.recipe?.values.loraR).toBe(4);
    expect(m.recipe?.fromFlags).toEqual(['loraR', 'epochs']);
    // --max-steps decides the length: the recipe drops its rehearsal (passages would repeat).
    expect(m.recipe?.values.rehearsal).toBe(0);
    expect(m.recipe?.reasons.some((x) => x.startsWith('no rehearsal: --max-steps'))).toBe(true);
    expect(existsSync(path.join(out, 'train-data.jsonl'))).toBe(false);

    const none = path.join(fx.dir, 'run-no-rehearsal');
    const n = await runCli(['train', '--data', fx.data, '--out', none, '--base', fx.base, '--epochs', '1', '--rehearsal', '0']);
    expect(n.code, n.stderr).toBe(0);
    expect(existsSync(path.join(none, 'train-data.jsonl'))).toBe(false);

    const plain = path.join(fx.dir, 'run-plain');
    const p = await runCli(['train', '--data', fx.data, '--out', plain, '--base', fx.base, '--max-steps', '2', '--no-recipe']);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).not.toContain('recipe for');
    expect((JSON.parse(readFileSync(path.join(plain, 'tinyforge.json'), 'utf8')) as Manifest).recipe).toBeUndefined();
    const adapter = JSON.parse(readFileSync(path.join(plain, 'adapter/adapter_config.json'), 'utf8')) as { r: number };
    expect(adapter.r).toBe(8);
  }, 180_000);
});
