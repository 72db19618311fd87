// Eval loss, perplexity and general-text perplexity in `foremforge eval`, and `train --eval-data`
// running the same eval at the end of training, on a tiny random model and a LoRA run trained on
// it: the run's loss on the answers it learned is below its base's, perplexity is exp(loss), the
// general-text ratio is tuned/base, and the end-of-training eval written into tinyforge.json
// equals `foremforge eval` on the same run and file (and the trainer's own eval loss there).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTinyModel } from '@tinyforge/native';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGeneralText } from '../../ts/pipeline/eval-loss.js';
import { exportModel } from '../../ts/pipeline/export.js';
import { runCli } from '../helpers/cli.js';

const QA = Array.from({ length: 8 }, (_, i) => ({ input: `Which code has item ${i}?`, output: `Item ${i} has code ${100 + i * 3}.` }));
const EVAL = QA.slice(0, 4).map((r, i) => ({ input: `What is the code of item ${i}?`, output: r.output, _key: String(100 + i * 3) }));
const GENERAL = 'Bread is one of the oldest foods.\n\nA river changes its course slowly, and then all at once.\n';

let fx: { dir: string; base: string; run: string; data: string; general: string; train: string };

const jsonl = (rows: object[]): string => `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`;
const trainArgs = (data: string, out: string, base: string): string[] =>
  // Fixed hyperparameters and no recipe, so the run is the same whatever the default recipe becomes.
  ['train', '--data', data, '--out', out, '--base', base, '--max-steps', '30', '--lr', '2e-2', '--lora-dropout', '0', '--no-recipe'];

interface Summary {
  model: string;
  kind: string;
  evalLoss: number | null;
  perplexity: number | null;
  generalPerplexity?: number;
  factRecall: number;
}

beforeAll(async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tinyforge-eval-loss-'));
  const base = path.join(dir, 'base');
  await createTinyModel(base, { seed: 5 });
  const train = path.join(dir, 'train.jsonl');
  writeFileSync(train, jsonl(QA));
  const data = path.join(dir, 'eval.jsonl');
  writeFileSync(data, jsonl(EVAL));
  const general = path.join(dir, 'general.txt');
  writeFileSync(general, GENERAL);
  const run = path.join(dir, 'run');
  // --eval-data: the trainer's eval loss and the finished run's eval, both on the same file.
  const r = await runCli([...trainArgs(train, run, base), '--eval-data', data], { env: { TINYFORGE_HOME: path.join(dir, 'home') } });
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toContain('eval of the finished run on --eval-data');
  expect(r.stdout).toMatch(/^eval loss\s+\d+\.\d{4}$/m);
  fx = { dir, base, run, data, general, train };
}, 300_000);

afterAll(() => {
  if (fx) rmSync(fx.dir, { recursive: true, force: true });
});

describe('foremforge eval: loss and perplexity', () => {
  it('reports eval loss and perplexity side by side; the run learned the answers its base did not', async () => {
    const r = await runCli(['eval', '--model', fx.run, '--compare', fx.base, '--data', fx.data, '--max-tokens', '4', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const [run, base] = JSON.parse(r.stdout) as Summary[];
    expect(run!.kind).toBe('run');
    expect(run!.evalLoss).toBeGreaterThan(0);
    expect(run!.perplexity).toBeCloseTo(Math.exp(run!.evalLoss!), 6);
    // A random 512-token model is near uniform (ln 512 = 6.2 nats); 30 steps on these answers cut
    // that (measured: base 5.74, run 5.24).
    expect(base!.evalLoss).toBeGreaterThan(5);
    expect(run!.evalLoss).toBeLessThan(base!.evalLoss! - 0.25);

    const table = await runCli(['eval', '--model', fx.run, '--compare', fx.base, '--data', fx.data, '--max-tokens', '4']);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^eval loss\s+\d+\.\d{4}\s+\d+\.\d{4}$/m);
    expect(table.stdout).toMatch(/^perplexity\s+\d+\.\d{2}\s+\d+\.\d{2}$/m);
  }, 300_000);

  it('--general reports general-text perplexity of the run and its own base, and their ratio', async () => {
    const r = await runCli(['eval', '--model', fx.run, '--data', fx.data, '--max-tokens', '4', '--general', fx.general, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      models: Summary[];
      general: { tuned: { perplexity: number }; base: { perplexity: number }; ratio: number; baseModel: string; withinGoal: boolean };
    };
    const g = out.general;
    expect(out.models[0]!.generalPerplexity).toBe(g.tuned.perplexity);
    expect(g.baseModel).toBe(fx.base);
    expect(g.ratio).toBeCloseTo(g.tuned.perplexity / g.base.perplexity, 9);
    expect(g.withinGoal).toBe(g.ratio <= 1.1);
    // The base's general perplexity is that of --compare base on the same texts.
    const c = await runCli([
      'eval',
      '--model',
      fx.run,
      '--compare',
      fx.base,
      '--data',
      fx.data,
      '--max-tokens',
      '4',
      '--general',
      fx.general,
    ]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/^general ppl\s+\d+\.\d{2}\s+\d+\.\d{2}$/m);
    expect(c.stdout).toContain(`vs base ${g.base.perplexity.toFixed(2)}`);
    expect(c.stdout).toMatch(/ratio \d\.\d{3}, (NOT )?within 10% of the base/);
  }, 300_000);

  it('scores an fp32 export through ONNX Runtime to the loss of its run (same tokens, same rule)', async () => {
    const exported = path.join(fx.dir, 'exp-fp32');
    await exportModel({ model: fx.run, out: exported, quantize: 'none', home: path.join(fx.dir, 'home') });
    const r = await runCli([
      'eval',
      '--model',
      fx.run,
      '--compare',
      exported,
      '--data',
      fx.data,
      '--max-tokens',
      '4',
      '--general',
      fx.general,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const { models } = JSON.parse(r.stdout) as { models: Summary[] };
    const [run, exp] = models;
    expect(exp!.kind).toBe('export');
    expect(exp!.evalLoss).toBeCloseTo(run!.evalLoss!, 3);
    expect(exp!.generalPerplexity).toBeCloseTo(run!.generalPerplexity!, 1);
  }, 300_000);

  it('reads the shipped general text (held-out prose) as paragraphs, and .jsonl {"text"} records', async () => {
    const shipped = await readGeneralText();
    expect(shipped.length).toBeGreaterThan(10);
    expect(shipped.every((p) => p.length > 100 && !p.includes('\n\n'))).toBe(true);
    const j = path.join(fx.dir, 'general.jsonl');
    writeFileSync(j, jsonl([{ text: 'One.' }, { text: 'Two.' }]));
    expect(await readGeneralText(j)).toEqual(['One.', 'Two.']);
    writeFileSync(j, jsonl([{ text: 'One.' }, { input: 'x', output: 'y' }]));
    await expect(readGeneralText(j)).rejects.toMatchObject({ code: 'INVALID_DATA' });
    await expect(readGeneralText(path.join(fx.dir, 'nope.txt'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('foremforge train --eval-data', () => {
  it('writes the same eval as foremforge eval into tinyforge.json, and its loss is the trainer eval loss', async () => {
    const manifest = JSON.parse(readFileSync(path.join(fx.run, 'tinyforge.json'), 'utf8')) as {
      metrics: { evalLoss: number; eval: Summary & { data: string; records: number } };
    };
    const e = manifest.metrics.eval;
    expect(e.data).toBe(path.resolve(fx.data));
    expect(e.records).toBe(EVAL.length);
    // `foremforge eval` answers with at most 64 tokens by default, as train's eval does.
    const r = await runCli(['eval', '--model', fx.run, '--data', fx.data, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const [now] = JSON.parse(r.stdout) as Summary[];
    expect(e.evalLoss).toBeCloseTo(now!.evalLoss!, 9);
    expect(e.factRecall).toBe(now!.factRecall);
    // One masking: the answers' loss is the trainer's own eval loss on the same records.
    expect(e.evalLoss!).toBeCloseTo(manifest.metrics.evalLoss, 3);
  }, 300_000);

  it('skips the answer eval of a {"text"} eval file with the reason, keeping the trained run', async () => {
    const text = path.join(fx.dir, 'text-eval.jsonl');
    writeFileSync(text, jsonl([{ text: 'Bread is one of the oldest foods.' }]));
    const out = path.join(fx.dir, 'run-text');
    const r = await runCli([...trainArgs(fx.train, out, fx.base), '--max-steps', '2', '--eval-data', text], {
      env: { TINYFORGE_HOME: path.join(fx.dir, 'home') },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/answer eval skipped: .*INVALID_DATA|answer eval skipped: 1 bad eval record/);
    const manifest = JSON.parse(readFileSync(path.join(out, 'tinyforge.json'), 'utf8')) as { metrics: Record<string, unknown> };
    expect(manifest.metrics.eval).toBeUndefined();
    expect(manifest.metrics.evalLoss).toBeGreaterThan(0);
  }, 300_000);
});
