// `foremforge train` end to end on a tiny random model: dry run, bad records (exit 2 with line
// numbers), a run with summary + loss.svg, --full (every weight trained, tied folder written), and
// SIGKILL mid-run followed by --resume, which must reproduce the loss sequence of an uninterrupted run.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createTinyModel } from '@tinyforge/native';
import { describe, expect, it } from 'vitest';
import { CLI, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const QA = Array.from({ length: 10 }, (_, i) => ({ input: `Which code has item ${i}?`, output: `Item ${i} has code ${100 + i * 3}.` }));

async function setup(): Promise<{ dir: string; base: string; data: string }> {
  const dir = tempDir();
  const base = path.join(dir, 'base');
  await createTinyModel(base, { seed: 5 });
  const data = path.join(dir, 'data.jsonl');
  writeFileSync(data, `${QA.map((r) => JSON.stringify(r)).join('\n')}\n`);
  return { dir, base, data };
}

/** name → raw bytes of each tensor in a safetensors file (8-byte header length, JSON header, data). */
function safetensors(file: string): Map<string, Buffer> {
  const buf = readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { data_offsets?: [number, number] }>;
  const out = new Map<string, Buffer>();
  for (const [name, t] of Object.entries(header)) {
    if (t.data_offsets) out.set(name, buf.subarray(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1]));
  }
  return out;
}

const losses = (run: string): number[] =>
  readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { loss: number }).loss);

describe('foremforge train', () => {
  it('--dry-run prints token statistics and the step count', async () => {
    const { dir, base, data } = await setup();
    const r = await runCli([
      'train',
      '--data',
      data,
      '--out',
      path.join(dir, 'run'),
      '--base',
      base,
      '--dry-run',
      '--batch-size',
      '3',
      '--epochs',
      '2',
      '--eval-split',
      '0.2',
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/records: 10 \(valid 10, invalid 0/);
    expect(r.stdout).toMatch(/split: 8 train, 2 eval/);
    expect(r.stdout).toMatch(/steps: 3 per epoch, 6 total/);
    expect(existsSync(path.join(dir, 'run'))).toBe(false);
  });

  it('bad records stop the run with exit 2 and line numbers; --skip-invalid trains', async () => {
    const { dir, base, data } = await setup();
    writeFileSync(data, `${readFileSync(data, 'utf8')}{"output":"no input"}\n`);
    const out = path.join(dir, 'run');
    const r = await runCli(['train', '--data', data, '--out', out, '--base', base, '--max-steps', '1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error[INVALID_DATA]');
    expect(r.stderr).toContain(`${data}:11:`);
    const ok = await runCli(['train', '--data', data, '--out', out, '--base', base, '--max-steps', '2', '--skip-invalid']);
    expect(ok.code).toBe(0);
  });

  it('trains with a summary, loss curve and run folder', async () => {
    const { dir, base, data } = await setup();
    const out = path.join(dir, 'run');
    const home = path.join(dir, 'home');
    const r = await runCli(
      [
        'train',
        '--data',
        data,
        '--out',
        out,
        '--base',
        base,
        '--max-steps',
        '6',
        '--batch-size',
        '2',
        '--eval-every',
        '3',
        '--lr',
        '5e-3',
        '--use-lora',
      ],
      { env: { TINYFORGE_HOME: home } }
    );
    expect(r.code, r.stderr).toBe(0);
    // The run is registered with its lineage.
    const listed = await runCli(['models', 'list', '--json'], { env: { TINYFORGE_HOME: home } });
    expect(listed.code, listed.stderr).toBe(0);
    const runs = (JSON.parse(listed.stdout) as Array<{ kind: string; path: string }>).filter((a) => a.kind === 'run');
    expect(runs.map((a) => a.path)).toEqual([out]);
    expect(r.stdout).toMatch(/trained 6\/6 steps/);
    expect(r.stdout).toMatch(/eval loss \d/);
    expect(r.stderr).toMatch(/eval @ step 3: loss/);
    for (const f of ['adapter/adapter_config.json', 'adapter/adapter_model.safetensors', 'tinyforge.json', 'metrics.jsonl', 'loss.svg']) {
      expect(existsSync(path.join(out, f)), f).toBe(true);
    }
    expect(readFileSync(path.join(out, 'loss.svg'), 'utf8')).toMatch(/^<svg[^>]*xmlns/);
    const both = await runCli(['train', '--data', data, '--out', out, '--base', base, '--full', '--use-lora']);
    expect(both.code).toBe(2);
  });

  it('--full trains every weight and writes a tied HF folder', async () => {
    const { dir, base, data } = await setup();
    const out = path.join(dir, 'run');
    const r = await runCli([
      'train',
      '--data',
      data,
      '--out',
      out,
      '--base',
      base,
      '--full',
      '--max-steps',
      '3',
      '--batch-size',
      '2',
      '--lr',
      '1e-2',
      '--eval-split',
      '0',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const before = safetensors(path.join(base, 'model.safetensors'));
    const after = safetensors(path.join(out, 'model', 'model.safetensors'));
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    expect(after.has('lm_head.weight')).toBe(false);
    for (const name of [
      'model.embed_tokens.weight',
      'model.norm.weight',
      'model.layers.0.input_layernorm.weight',
      'model.layers.1.post_attention_layernorm.weight',
      'model.layers.0.self_attn.q_proj.weight',
    ]) {
      expect(after.get(name)?.equals(before.get(name) as Buffer), name).toBe(false);
    }
    const config = (p: string) => JSON.parse(readFileSync(path.join(p, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config(path.join(out, 'model'))).toEqual(config(base));
  });

  it('--resume after SIGKILL continues with the same loss sequence', async () => {
    const { dir, base, data } = await setup();
    const args = (out: string) => [
      'train',
      '--data',
      data,
      '--out',
      out,
      '--base',
      base,
      '--max-steps',
      '150',
      '--batch-size',
      '2',
      '--lr',
      '5e-3',
      '--checkpoint-every',
      '5',
      '--eval-split',
      '0',
    ];
    const straight = path.join(dir, 'straight');
    expect((await runCli(args(straight))).code).toBe(0);

    const out = path.join(dir, 'killed');
    const child = spawn(process.execPath, [CLI, ...args(out)], { stdio: 'ignore' });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    const ckpts = path.join(out, 'checkpoints');
    while (!(existsSync(ckpts) && readdirSync(ckpts).some((n) => n.startsWith('step-')))) {
      await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGKILL');
    await exited;
    expect(existsSync(path.join(out, 'tinyforge.json'))).toBe(false);

    const resumed = await runCli([...args(out), '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/resumed from step \d+/);
    expect(losses(out)).toEqual(losses(straight));
  });
});
