// `foremforge export` end to end on a tiny random model and a LoRA run trained on it: the folder
// (transformers.js layout, tokenizer and config files, tinyforge.json lineage), registry lineage
// base → run → export, overwrite rules, refused --out paths, atomicity (a write error, a full
// disk, Ctrl-C, a killed export's leftovers), bad input (each a coded error naming the file,
// nothing left behind). transformers.js on the folder: export-transformers-js.test.ts.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createTinyModel } from '@tinyforge/native';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportModel } from '../../ts/pipeline/export.js';
import { CLI, ROOT, runCli } from '../helpers/cli.js';
import { rejection } from '../helpers/errors.js';
import { type ExportFixture, FOLDER, createExportFixture, expectNothingLeft, json, tree } from '../helpers/export-fixture.js';
import { tempDir } from '../helpers/tmp.js';

let fx: ExportFixture;

beforeAll(async () => {
  fx = await createExportFixture();
}, 120_000);

afterAll(() => rmSync(fx.dir, { recursive: true, force: true }));

const env = () => ({ TINYFORGE_HOME: fx.home });
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('foremforge export', () => {
  it('exports a LoRA run as a transformers.js-layout folder with its lineage in tinyforge.json and the registry', async () => {
    const out = path.join(tempDir(), 'svc');
    const r = await runCli(['export', '--model', fx.run, '--out', out, '--keep-fp32'], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/✓ merge adapter \+ write graph \+ quantize int8/);
    expect(r.stderr).toMatch(/✓ check in ONNX Runtime/);
    expect(r.stdout).toContain(`exported run ${fx.run} → ${out}`);
    expect(tree(out)).toEqual([...FOLDER, 'onnx/model.onnx', 'onnx/model.onnx_data'].sort());

    const config = json(path.join(out, 'config.json'));
    expect(config).toMatchObject({
      model_type: 'llama',
      'transformers.js_config': { dtype: 'q8', use_external_data_format: { 'model_quantized.onnx': 1 } },
      torch_dtype: 'float32',
    });
    expect(json(path.join(out, 'tokenizer_config.json')).chat_template).toContain('<|im_start|>');
    expect(json(path.join(out, 'generation_config.json'))).toMatchObject({ eos_token_id: 2, do_sample: false });
    expect(readFileSync(path.join(out, 'tokenizer.json'))).toEqual(readFileSync(path.join(fx.base, 'tokenizer.json')));

    const m = json(path.join(out, 'tinyforge.json'));
    const runManifest = json(path.join(fx.run, 'tinyforge.json'));
    expect(m.kind).toBe('tinyforge.export');
    expect(m.source).toBe('run');
    expect(m.run).toBe(fx.run);
    expect(m.base).toMatchObject({ path: fx.base, format: 'hf', sha256: runManifest.base.sha256 });
    expect(m.data.sha256).toBe(runManifest.data.sha256);
    expect(m.adapter.sha256).toBe(sha256(path.join(fx.run, 'adapter/adapter_model.safetensors')));
    expect(m.adapter.config).toMatchObject({ r: 16, peft_type: 'LORA' });
    expect(m.quantization.scheme).toBe('int8');
    expect(m.transformersJs).toEqual({ dtype: 'q8', file: 'onnx/model_quantized.onnx' });
    expect(m.versions).toMatchObject({ tinyforge: expect.any(String), onnxruntime: expect.stringMatching(/^1\./) });
    for (const [file, size] of Object.entries(m.files as Record<string, number>))
      expect(readFileSync(path.join(out, file)).length, file).toBe(size);
    // The graph and its external data file together.
    const bytes = (f: string) => readFileSync(path.join(out, f)).length + readFileSync(path.join(out, `${f}_data`)).length;
    expect(m.metrics.fp32Bytes).toBe(bytes('onnx/model.onnx'));
    expect(m.model.bytes).toBe(bytes('onnx/model_quantized.onnx'));
    expect(m.check.top1AgreementWithFp32).toBeGreaterThan(0.8);
    // Perplexity on the shipped held-out text through ORT, the int8 model beside the fp32 one it
    // was written with (--keep-fp32), printed in the summary.
    expect(r.stderr).toMatch(/✓ perplexity on the held-out text/);
    expect(r.stdout).toMatch(/^quality: perplexity [\d.]+ on \d+ held-out tokens; fp32 [\d.]+ \([+-][\d.]+%\)$/m);
    expect(m.quality.tokens).toBeGreaterThan(2000);
    expect(m.quality.model).toMatchObject({ file: 'onnx/model_quantized.onnx', perplexity: expect.any(Number) });
    expect(m.quality.fp32.file).toBe('onnx/model.onnx');
    expect(m.quality.model.perplexity).toBeCloseTo(Math.exp(m.quality.model.nll / m.quality.tokens), 6);
    expect(Math.abs(m.quality.vsFp32)).toBeLessThan(0.05);

    const show = await runCli(['models', 'show', path.basename(out)], { env: env() });
    expect(show.code, show.stderr).toBe(0);
    const runRow = (
      JSON.parse((await runCli(['models', 'list', '--kind', 'run', '--json'], { env: env() })).stdout) as { id: string; path: string }[]
    ).find((a) => a.path === fx.run)!;
    expect(show.stdout).toMatch(
      new RegExp(`^lineage: base \\S+ \\(base-[0-9a-f]+\\) → run run \\(${runRow.id}\\) → export svc \\(exp-[0-9a-f]+\\)`)
    );
    const shown = JSON.parse((await runCli(['models', 'show', path.basename(out), '--json'], { env: env() })).stdout);
    expect(shown).toMatchObject({ kind: 'export', parentId: runRow.id, path: out, datasetSha256: runManifest.data.sha256 });
    expect(shown.lineage.map((a: { kind: string }) => a.kind)).toEqual(['base_model', 'run', 'export']);
  });

  it('takes the seed spelling, a registry id, --adapter over --base, and a base without a run', async () => {
    const dir = tempDir();
    const seed = await runCli(
      ['export', '--model-path', fx.run, '--output-dir', path.join(dir, 'a'), '--export-onnx', '--quantize', 'none'],
      { env: env() }
    );
    expect(seed.code, seed.stderr).toBe(0);
    expect(tree(path.join(dir, 'a'))).toContain('onnx/model.onnx');
    expect(json(path.join(dir, 'a/config.json'))['transformers.js_config']).toEqual({
      dtype: 'fp32',
      use_external_data_format: { 'model.onnx': 1 },
    });

    const viaManifest = await runCli(['export', '--model', path.join(fx.run, 'tinyforge.json'), '--out', path.join(dir, 'm'), '--json'], {
      env: env(),
    });
    expect(viaManifest.code, viaManifest.stderr).toBe(0);
    expect(JSON.parse(viaManifest.stdout).source).toBe('run');
    const movedRun = path.join(dir, 'moved-run');
    cpSync(fx.run, movedRun, { recursive: true });
    const manifest = json(path.join(movedRun, 'tinyforge.json'));
    manifest.base.path = path.join(dir, 'nowhere');
    writeFileSync(path.join(movedRun, 'tinyforge.json'), JSON.stringify(manifest));
    const rebased = await runCli(['export', '--model', movedRun, '--base', fx.base, '--out', path.join(dir, 'r')], { env: env() });
    expect(rebased.code, rebased.stderr).toBe(0);
    expect(readFileSync(path.join(dir, 'r/onnx/model_quantized.onnx'))).toEqual(
      readFileSync(path.join(dir, 'm/onnx/model_quantized.onnx'))
    );

    const runs = JSON.parse((await runCli(['models', 'list', '--kind', 'run', '--json'], { env: env() })).stdout) as {
      id: string;
      path: string;
    }[];
    const id = runs.find((a) => a.path === fx.run)!.id;
    const byId = await runCli(['export', '--model', id, '--out', path.join(dir, 'b'), '--json'], { env: env() });
    expect(byId.code, byId.stderr).toBe(0);
    expect(JSON.parse(byId.stdout)).toMatchObject({ parentId: id, model: 'onnx/model_quantized.onnx', source: 'run' });

    const adapter = await runCli(
      ['export', '--adapter', path.join(fx.run, 'adapter'), '--base', fx.base, '--out', path.join(dir, 'c'), '--json'],
      { env: env() }
    );
    expect(adapter.code, adapter.stderr).toBe(0);
    const a = JSON.parse(adapter.stdout) as { parentId: string; source: string };
    expect(a.source).toBe('adapter');
    expect(a.parentId).toMatch(/^base-/);
    // The merged weights are the same whichever way the adapter was named.
    expect(readFileSync(path.join(dir, 'c/onnx/model_quantized.onnx'))).toEqual(
      readFileSync(path.join(dir, 'b/onnx/model_quantized.onnx'))
    );

    const base = await runCli(['export', '--model', fx.base, '--out', path.join(dir, 'd'), '--json'], { env: env() });
    expect(base.code, base.stderr).toBe(0);
    expect(JSON.parse(base.stdout)).toMatchObject({ source: 'base', parentId: a.parentId });
    expect(json(path.join(dir, 'd/tinyforge.json'))).toMatchObject({
      run: null,
      adapter: null,
      base: { sha256: json(path.join(fx.run, 'tinyforge.json')).base.sha256 },
    });
  });

  it('refuses a non-empty --out without --overwrite, replaces an export with it, and never replaces anything else', async () => {
    const dir = tempDir();
    const out = path.join(dir, 'svc');
    expect((await runCli(['export', '--model', fx.run, '--out', out], { env: env() })).code).toBe(0);
    const before = readFileSync(path.join(out, 'tinyforge.json'), 'utf8');
    const again = await runCli(['export', '--model', fx.run, '--out', out, '--quantize', 'none'], { env: env() });
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('error[FILE_EXISTS]');
    expect(again.stderr).toContain(out);
    expect(readFileSync(path.join(out, 'tinyforge.json'), 'utf8')).toBe(before);

    const list = async () =>
      (
        JSON.parse((await runCli(['models', 'list', '--kind', 'export', '--json'], { env: env() })).stdout) as {
          id: string;
          path: string;
        }[]
      ).filter((a) => a.path === out);
    const [row] = await list();
    const over = await runCli(['export', '--model', fx.run, '--out', out, '--quantize', 'none', '--overwrite'], { env: env() });
    expect(over.code, over.stderr).toBe(0);
    expect(tree(out)).toContain('onnx/model.onnx');
    expect(tree(out)).not.toContain('onnx/model_quantized.onnx');
    expect(tree(out)).not.toContain('onnx/model_quantized.onnx_data');
    expect((await list()).map((a) => a.id)).toEqual([row!.id]);
    expect(readdirSync(dir)).toEqual(['svc']);

    const other = path.join(dir, 'notes');
    mkdirSync(other);
    writeFileSync(path.join(other, 'todo.txt'), 'mine');
    const refused = await runCli(['export', '--model', fx.run, '--out', other, '--overwrite'], { env: env() });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('error[FILE_EXISTS]');
    expect(readdirSync(other)).toEqual(['todo.txt']);

    const file = path.join(dir, 'file');
    writeFileSync(file, 'x');
    expect((await runCli(['export', '--model', fx.run, '--out', file], { env: env() })).stderr).toContain('error[FILE_EXISTS]');
  });

  it('rejects an --out or --name that resolves where an export must not go', async () => {
    const dir = tempDir();
    const link = path.join(dir, 'link');
    symlinkSync(fx.run, link);
    const cases: [string[], string][] = [
      [['--out', path.join(fx.run, 'svc')], 'UNSAFE_PATH'], // inside the run it reads
      [['--out', path.join(link, 'svc')], 'UNSAFE_PATH'], // the same, through a symlink
      [['--out', path.dirname(fx.run), '--overwrite'], 'UNSAFE_PATH'], // holds the run
      [['--out', ROOT, '--overwrite'], 'UNSAFE_PATH'], // the working folder
      [['--out', '/'], 'UNSAFE_PATH'],
      [['--out', path.join(fx.home, 'svc')], 'UNSAFE_PATH'], // inside the registry home
      [['--out', path.join(dir, 'ok'), '--name', '../escape'], 'INVALID_ARGUMENT'],
      [['--out', path.join(dir, 'ok'), '--quantize', 'int3'], 'INVALID_ARGUMENT'],
    ];
    for (const [args, code] of cases) {
      const r = await runCli(['export', '--model', fx.run, ...args], { env: env() });
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(`error[${code}]`);
    }
    expect(existsSync(path.join(fx.run, 'svc'))).toBe(false);
    expectNothingLeft(path.join(dir, 'ok'));
  });

  it('bad input: each a coded error naming the file, exit 1 or 2, nothing left behind', async () => {
    const dir = tempDir();
    const copyRun = (name: string) => {
      const p = path.join(dir, name);
      cpSync(fx.run, p, { recursive: true });
      return p;
    };
    const noManifest = copyRun('no-manifest');
    rmSync(path.join(noManifest, 'tinyforge.json'));
    const badManifest = copyRun('bad-manifest');
    writeFileSync(path.join(badManifest, 'tinyforge.json'), '{"kind": "tinyforge.run", "base": ');
    const noAdapterCfg = copyRun('no-adapter-config');
    rmSync(path.join(noAdapterCfg, 'adapter/adapter_config.json'));
    const badSafetensors = copyRun('bad-adapter-weights');
    truncateSync(path.join(badSafetensors, 'adapter/adapter_model.safetensors'), 100);
    const badBase = path.join(dir, 'bad-base');
    cpSync(fx.base, badBase, { recursive: true });
    truncateSync(path.join(badBase, 'model.safetensors'), 5000);
    const movedBase = copyRun('moved-base');
    const mm = json(path.join(movedBase, 'tinyforge.json'));
    mm.base.path = path.join(dir, 'gone');
    writeFileSync(path.join(movedBase, 'tinyforge.json'), JSON.stringify(mm));
    const otherBase = path.join(dir, 'other-base');
    await createTinyModel(otherBase, { seed: 4 });
    const badGguf = path.join(dir, 'bad.gguf');
    writeFileSync(badGguf, Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(64, 7)]));
    // An adapter trained for a wider model: the shapes cannot fit the base.
    const wide = path.join(dir, 'wide');
    await createTinyModel(wide, { seed: 3, hidden: 96 });
    const wideRun = path.join(dir, 'wide-run');
    const trained = await runCli(['train', '--data', fx.data, '--out', wideRun, '--base', wide, '--max-steps', '1'], { env: env() });
    expect(trained.code, trained.stderr).toBe(0);

    const cases: { args: string[]; code: string; names: string }[] = [
      { args: ['--model', path.join(dir, 'missing-run')], code: 'NOT_FOUND', names: 'missing-run' },
      { args: ['--model', noManifest], code: 'RUN_INVALID', names: path.join(noManifest, 'tinyforge.json') },
      { args: ['--model', badManifest], code: 'RUN_INVALID', names: path.join(badManifest, 'tinyforge.json') },
      { args: ['--model', noAdapterCfg], code: 'ADAPTER_INVALID', names: path.join(noAdapterCfg, 'adapter/adapter_config.json') },
      { args: ['--model', badSafetensors], code: 'ADAPTER_INVALID', names: path.join(badSafetensors, 'adapter') },
      { args: ['--model', badBase], code: 'WEIGHTS_INVALID', names: path.join(badBase, 'model.safetensors') },
      { args: ['--model', movedBase], code: 'MODEL_NOT_FOUND', names: path.join(dir, 'gone') },
      { args: ['--model', movedBase, '--base', otherBase], code: 'BASE_MISMATCH', names: path.join(movedBase, 'tinyforge.json') },
      { args: ['--model', badGguf], code: 'GGUF_INVALID', names: badGguf },
      {
        args: ['--adapter', path.join(wideRun, 'adapter'), '--base', fx.base],
        code: 'ADAPTER_INVALID',
        names: 'adapter_model.safetensors',
      },
    ];
    for (const c of cases) {
      const out = path.join(dir, 'out');
      const r = await runCli(['export', ...c.args, '--out', out], { env: env() });
      expect([1, 2], `${c.args.join(' ')}: exit ${r.code}: ${r.stderr}`).toContain(r.code);
      expect(r.stderr, c.args.join(' ')).toContain(`error[${c.code}]`);
      expect(r.stderr, c.args.join(' ')).toContain(c.names);
      expectNothingLeft(out);
    }
    // No registry rows for the broken inputs either.
    const rows = JSON.parse((await runCli(['models', 'list', '--json'], { env: env() })).stdout) as { path: string }[];
    expect(rows.filter((a) => a.path.startsWith(dir) && !a.path.startsWith(wideRun))).toEqual([]);
  });

  it('a write error mid-export (file-size limit) leaves nothing behind', async () => {
    const out = path.join(tempDir(), 'svc');
    // 64 KiB: the INT8 graph's weights (~126 KB since the RoPE tables are computed in the graph;
    // 260 KB before) do not fit: the first write of the export fails with EFBIG.
    const r = spawnSync('bash', ['-c', `ulimit -f 64 && exec "${process.execPath}" "${CLI}" export --model "${fx.run}" --out "${out}"`], {
      env: { ...process.env, ...env() },
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/error\[WRITE_FAILED\]: .*model_quantized\.onnx/);
    expectNothingLeft(out);
  });

  it('a full disk (a small tmpfs) leaves nothing behind', async (ctx) => {
    const mnt = tempDir();
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'tmpfs', mnt], { encoding: 'utf8' });
    if (mounted.status !== 0) {
      console.log(
        `skipped: cannot mount a tmpfs here (${(mounted.stderr || mounted.error?.message || '').trim()}); the file-size-limit test covers the write error`
      );
      ctx.skip();
      return;
    }
    try {
      const out = path.join(mnt, 'svc');
      // INT8 (260 KB) fits in 512 KB; the fp32 twin (557 KB) cannot: ENOSPC mid-file.
      const r = await runCli(['export', '--model', fx.run, '--out', out, '--keep-fp32'], { env: env() });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/error\[WRITE_FAILED\]: .*model\.onnx.*(No space|space left)/i);
      expectNothingLeft(out);
      expect(readdirSync(mnt)).toEqual([]);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  it("Ctrl-C stops the export with exit 130 and nothing left; a killed export's staging folder is cleaned up next time", async () => {
    const dir = tempDir();
    // A wider model, so the native export runs long enough to be interrupted in the middle.
    const big = path.join(dir, 'big');
    await createTinyModel(big, { seed: 1, hidden: 512, layers: 4, vocabSize: 4096 });
    const out = path.join(dir, 'svc');
    const child = spawn(process.execPath, [CLI, 'export', '--model', big, '--out', out, '--keep-fp32'], {
      env: { ...process.env, ...env() },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('✓ resolve')) child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((res) => child.on('close', res));
    expect(code, stderr).toBe(130);
    expect(stderr).toContain('error[ABORTED]');
    expectNothingLeft(out);

    // What SIGKILL leaves (a staging folder of a dead process) is removed by the next export.
    const stale = path.join(dir, '.svc.tmp-999999999-deadbeef');
    mkdirSync(path.join(stale, 'onnx'), { recursive: true });
    const r = await runCli(['export', '--model', fx.run, '--out', out], { env: env() });
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['big', 'svc']);
    // Killed between the two renames of an --overwrite: the previous export comes back.
    const before = readFileSync(path.join(out, 'tinyforge.json'), 'utf8');
    const { renameSync } = await import('node:fs');
    renameSync(out, path.join(dir, '.svc.old-999999999-deadbeef'));
    const refused = await runCli(['export', '--model', fx.run, '--out', out], { env: env() });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('error[FILE_EXISTS]');
    expect(readFileSync(path.join(out, 'tinyforge.json'), 'utf8')).toBe(before);
  });

  it('an AbortSignal stops the library call between stages and leaves nothing', async () => {
    const out = path.join(tempDir(), 'svc');
    const controller = new AbortController();
    const err = await rejection<{ code: string }>(
      exportModel({
        model: fx.run,
        out,
        home: fx.home,
        signal: controller.signal,
        onProgress: (p) => {
          if (p.stage === 'files' && p.state === 'done') controller.abort();
        },
      })
    );
    expect(err.code).toBe('ABORTED');
    expectNothingLeft(out);
  });
});
