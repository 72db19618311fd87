// train() through the built @tinyforge/native on a tiny random model made by createTinyModel:
// dry run, bad records, a real run writing the run folder with progress events, and an abort
// that leaves a checkpoint from which `resume` continues the identical loss sequence.
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type JsTrainOptions, type JsTrainProgress, createTinyModel, train } from '@tinyforge/native';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/tmp.js';
import { codeOf } from '../helpers/errors.js';

const QA = Array.from({ length: 12 }, (_, i) => ({ input: `What is fact number ${i}?`, output: `Fact ${i} is ${(i * 7) % 10}.` }));

async function setup(): Promise<{ dir: string; base: string; data: string }> {
  const dir = tempDir();
  const base = path.join(dir, 'base');
  await createTinyModel(base, { seed: 3 });
  const data = path.join(dir, 'data.jsonl');
  writeFileSync(data, `${QA.map((r) => JSON.stringify(r)).join('\n')}\n`);
  return { dir, base, data };
}

describe('train', () => {
  it('dry run: token statistics and step count, nothing written', async () => {
    const { dir, base, data } = await setup();
    const out = path.join(dir, 'run');
    const r = await train({ base, data, out, dryRun: true, batchSize: 2, epochs: 2, evalSplit: 0.25 });
    expect(r.dryRun).toBe(true);
    expect(r.data.valid).toBe(12);
    expect([r.trainExamples, r.evalExamples]).toEqual([9, 3]);
    expect([r.stepsPerEpoch, r.totalSteps]).toEqual([5, 10]);
    expect(r.data.labelTokens).toBeGreaterThan(0);
    expect(r.data.labelTokens).toBeLessThan(r.data.tokens);
    expect(existsSync(out)).toBe(false);

    const evalData = path.join(dir, 'eval.jsonl');
    writeFileSync(
      evalData,
      QA.slice(0, 4)
        .map((r) => JSON.stringify(r))
        .join('\n')
    );
    const sep = await train({ base, data, out, dryRun: true, evalData, evalSplit: 0.5 });
    expect([sep.trainExamples, sep.evalExamples, sep.evalData?.valid]).toEqual([12, 4, 4]);
  });

  it('bad records: INVALID_DATA naming every line; skipInvalid trains without them', async () => {
    const { dir, base, data } = await setup();
    writeFileSync(data, `${readFileSync(data, 'utf8')}{"input":"no output"}\nnot json\n`);
    const out = path.join(dir, 'run');
    const err = await train({ base, data, out, maxSteps: 1 }).catch((e: Error & { code: string }) => e);
    expect((err as { code: string }).code).toBe('INVALID_DATA');
    expect((err as Error).message).toContain(`${data}:13:`);
    expect((err as Error).message).toContain(`${data}:14:`);
    const dry = await train({ base, data, out, dryRun: true });
    expect(dry.issues.map((i) => i.line)).toEqual([13, 14]);
    const r = await train({ base, data, out, maxSteps: 1, skipInvalid: true });
    expect(r.steps).toBe(1);
  });

  it('trains, reports progress, writes adapter + manifest + metrics', async () => {
    const { dir, base, data } = await setup();
    const out = path.join(dir, 'run');
    const events: JsTrainProgress[] = [];
    const r = await train({ base, data, out, maxSteps: 4, batchSize: 2, evalEvery: 2, lr: 5e-3 }, (p) => events.push(p));
    expect(r.steps).toBe(4);
    expect(r.history.map((h) => h.step)).toEqual([1, 2, 3, 4]);
    expect(r.evalLoss).toBeGreaterThan(0);
    expect(r.perplexity).toBeCloseTo(Math.exp(r.evalLoss!), 6);
    // Non-blocking delivery may coalesce nothing here (the listener is fast), but never invents events.
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.totalSteps === 4 && Number.isFinite(e.loss))).toBe(true);
    const cfg = JSON.parse(readFileSync(path.join(out, 'adapter/adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({ peft_type: 'LORA', task_type: 'CAUSAL_LM', r: 8, lora_alpha: 16, bias: 'none' });
    expect(existsSync(path.join(out, 'adapter/adapter_model.safetensors'))).toBe(true);
    const manifest = JSON.parse(readFileSync(path.join(out, 'tinyforge.json'), 'utf8'));
    expect(manifest.base.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.data.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(manifest.metrics.steps).toBe(4);
    expect(readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n')).toHaveLength(4);
  });

  it('abort stops at a step boundary with a checkpoint; resume continues the same losses', async () => {
    const { dir, base, data } = await setup();
    const opts = (out: string): JsTrainOptions => ({
      base,
      data,
      out,
      maxSteps: 120,
      batchSize: 2,
      gradAccum: 2,
      lr: 5e-3,
      loraDropout: 0.1,
    });
    // The event loop stays free while Rust trains: a 1 ms interval keeps firing.
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const straight = await train(opts(path.join(dir, 'straight')));
    clearInterval(timer);
    expect(ticks).toBeGreaterThan(10);

    const out = path.join(dir, 'cut');
    const controller = new AbortController();
    const code = await codeOf(train(opts(out), () => controller.abort(), controller.signal));
    expect(code).toBe('ABORTED');
    const ckpts = readdirSync(path.join(out, 'checkpoints')).filter((n) => n.startsWith('step-'));
    expect(ckpts).toHaveLength(1);

    const resumed = await train({ ...opts(out), resume: true });
    // Progress events arrive asynchronously: the abort lands a few steps after the first one, long
    // before step 120.
    expect(resumed.resumedFrom).toBeGreaterThanOrEqual(1);
    expect(resumed.resumedFrom).toBeLessThan(120);
    expect(resumed.history.map((h) => h.loss)).toEqual(straight.history.map((h) => h.loss));

    expect(await codeOf(train({ ...opts(out), resume: true, lr: 1e-3 }))).toBe('CHECKPOINT_MISMATCH');
    expect(await codeOf(train({ ...opts(path.join(dir, 'none')), resume: true }))).toBe('NO_CHECKPOINT');
  });

  it('rejects bad options with INVALID_ARGUMENT', async () => {
    const { dir, base, data } = await setup();
    expect(await codeOf(train({ base, data, out: path.join(dir, 'x'), targetModules: ['attn'] }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(train({ base, data, out: path.join(dir, 'x'), batchSize: 0 }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(train({ base: path.join(dir, 'nope'), data, out: path.join(dir, 'x') }))).toBe('MODEL_NOT_FOUND');
  });
});
