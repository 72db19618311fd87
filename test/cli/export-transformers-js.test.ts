// @huggingface/transformers (4.x) loads a `foremforge export` folder as is and generates the same
// greedy tokens as our runtimes: fp32 = the candle model with the adapter applied, int8 and int4 =
// our greedy loop through ONNX Runtime on the same file.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { Generator, Tokenizer } from '@tinyforge/native';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OnnxDecoder } from '../../ts/pipeline/export-check.js';
import { runCli } from '../helpers/cli.js';
import { type ExportFixture, FOLDER, QA, chatIds, createExportFixture, expectNothingLeft, json, tree } from '../helpers/export-fixture.js';
import { tempDir } from '../helpers/tmp.js';
import { loadTransformersJs, transformersJsGreedy } from '../helpers/transformers-js.js';

let fx: ExportFixture;

beforeAll(async () => {
  fx = await createExportFixture();
}, 120_000);

afterAll(() => rmSync(fx.dir, { recursive: true, force: true }));

const env = () => ({ TINYFORGE_HOME: fx.home });

describe('transformers.js on the exported folder', () => {
  it('generates the same greedy tokens as our runtimes (fp32 = candle with the adapter, int8 = ORT)', async (ctx) => {
    const { tjs, reason } = await loadTransformersJs();
    if (!tjs) {
      console.log(`skipped: @huggingface/transformers unavailable: ${reason}`);
      ctx.skip();
      return;
    }
    const dir = tempDir();
    const fp32 = path.join(dir, 'fp32');
    const int8 = path.join(dir, 'int8');
    expect((await runCli(['export', '--model', fx.run, '--out', fp32, '--quantize', 'none'], { env: env() })).code).toBe(0);
    expect((await runCli(['export', '--model', fx.run, '--out', int8], { env: env() })).code).toBe(0);
    const eos = [json(path.join(int8, 'generation_config.json')).eos_token_id].flat() as number[];
    const strip = (ids: number[]) => (ids.length > 0 && eos.includes(ids[ids.length - 1]!) ? ids.slice(0, -1) : ids);
    const gen = await Generator.load(fx.base, { adapter: path.join(fx.run, 'adapter') });
    const plain = await Generator.load(fx.base);
    const tok = Tokenizer.fromFile(fp32);
    const seen = new Set<number>();
    let changedByAdapter = 0;
    for (const question of [QA[1]!.input, QA[7]!.input, 'Say something.']) {
      const prompt = chatIds(fp32, question);
      // fp32: the folder through transformers.js = the candle model with the adapter applied.
      const candle = await gen.generate(question, { maxTokens: 16 });
      for (const t of candle.tokens) seen.add(t);
      if (JSON.stringify((await plain.generate(question, { maxTokens: 16 })).tokens) !== JSON.stringify(candle.tokens)) changedByAdapter++;
      const ours = strip(await transformersJsGreedy(tjs, fp32, prompt, 16));
      expect(ours, question).toEqual(candle.tokens);
      expect(tok.decode(ours, { skipSpecialTokens: true })).toBe(candle.text);
      // int8 (transformers.js picks onnx/model_quantized.onnx from config.json on its own) =
      // our greedy loop through ONNX Runtime on the same file.
      const ort = await (await OnnxDecoder.load(path.join(int8, 'onnx/model_quantized.onnx'))).greedy(prompt, 16, eos);
      expect(strip(await transformersJsGreedy(tjs, int8, prompt, 16)), question).toEqual(ort);
    }
    // The comparison means something: varied tokens, and the adapter's effect is in them.
    expect(seen.size).toBeGreaterThanOrEqual(5);
    expect(changedByAdapter).toBeGreaterThan(0);
  }, 300_000);

  it('--quantize int4 writes onnx/model_q4.onnx, which transformers.js picks and runs like our ORT loop', async (ctx) => {
    const { tjs, reason } = await loadTransformersJs();
    if (!tjs) {
      console.log(`skipped: @huggingface/transformers unavailable: ${reason}`);
      ctx.skip();
      return;
    }
    const out = path.join(tempDir(), 'int4');
    const r = await runCli(['export', '--model', fx.run, '--out', out, '--quantize', 'int4'], { env: env() });
    if (r.code === 2 && /error\[INVALID_ARGUMENT\].*quantize/.test(r.stderr)) {
      console.log(`skipped: the native exporter does not write int4 yet (${r.stderr.split('\n').find((l) => l.startsWith('error['))})`);
      expectNothingLeft(out);
      ctx.skip();
      return;
    }
    expect(r.code, r.stderr).toBe(0);
    expect(tree(out)).toEqual(FOLDER.map((f) => f.replace('model_quantized', 'model_q4')).sort());
    expect(json(path.join(out, 'config.json'))['transformers.js_config']).toEqual({
      dtype: 'q4',
      use_external_data_format: { 'model_q4.onnx': 1 },
    });
    expect(json(path.join(out, 'tinyforge.json')).quantization.scheme).toBe('int4');
    const eos = [json(path.join(out, 'generation_config.json')).eos_token_id].flat() as number[];
    const decoder = await OnnxDecoder.load(path.join(out, 'onnx/model_q4.onnx'));
    for (const question of [QA[1]!.input, 'Say something.']) {
      const prompt = chatIds(out, question);
      const got = await transformersJsGreedy(tjs, out, prompt, 16);
      expect(got.length > 0 && eos.includes(got[got.length - 1]!) ? got.slice(0, -1) : got, question).toEqual(
        await decoder.greedy(prompt, 16, eos)
      );
    }
  }, 300_000);
});
