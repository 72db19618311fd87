// `foremforge export` on the real default model: a short LoRA run on SmolLM2-135M-Instruct (GGUF
// base, so config.json and the tokenizer files are rebuilt from GGUF metadata) exported as INT8
// with the fp32 twin, then loaded by @huggingface/transformers exactly as a user would: its greedy
// tokens equal the candle model with the adapter (fp32 file) and our ONNX Runtime loop (INT8 file).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Generator, Tokenizer } from '@tinyforge/native';
import { describe, expect, it } from 'vitest';
import { OnnxDecoder } from '../../ts/pipeline/export-check.js';
import { ROOT, runCli } from '../helpers/cli.js';
import { smollm2GgufPath } from '../helpers/models.js';
import { tempDir } from '../helpers/tmp.js';
import { loadTransformersJs, transformersJsGreedy } from '../helpers/transformers-js.js';

const QUESTIONS = ['What is the capital of France?', 'Write one sentence about the sea.'];

describe('export SmolLM2-135M-Instruct', () => {
  it('a LoRA run on the GGUF exports to a folder transformers.js generates from like our runtimes', async (ctx) => {
    const gguf = await smollm2GgufPath();
    const dir = tempDir();
    const env = { TINYFORGE_HOME: path.join(dir, 'home') };
    const run = path.join(dir, 'run');
    const trained = await runCli(
      [
        'train',
        '--data',
        path.join(ROOT, 'examples/sample_qna.jsonl'),
        '--out',
        run,
        '--base',
        gguf,
        '--max-steps',
        '2',
        '--batch-size',
        '2',
        '--max-seq-len',
        '96',
        '--lora-r',
        '4',
      ],
      { env }
    );
    expect(trained.code, trained.stderr).toBe(0);
    const out = path.join(dir, 'svc');
    const r = await runCli(['export', '--model', run, '--out', out, '--keep-fp32'], { env });
    expect(r.code, r.stderr).toBe(0);
    console.log(r.stdout);
    for (const f of [
      'onnx/model.onnx',
      'onnx/model_quantized.onnx',
      'config.json',
      'generation_config.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'tinyforge.json',
    ]) {
      expect(existsSync(path.join(out, f)), f).toBe(true);
    }
    const m = JSON.parse(readFileSync(path.join(out, 'tinyforge.json'), 'utf8'));
    expect(m.base).toMatchObject({ format: 'gguf', sha256: 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53' });
    expect(m.check.fp32KvCache.maxDiff).toBeLessThan(1e-2);
    expect(JSON.parse(readFileSync(path.join(out, 'tokenizer_config.json'), 'utf8')).chat_template).toContain('<|im_start|>');

    const { tjs, reason } = await loadTransformersJs();
    if (!tjs) {
      console.log(`skipped the transformers.js half: @huggingface/transformers unavailable: ${reason}`);
      ctx.skip();
      return;
    }
    const tok = Tokenizer.fromFile(out);
    const gen = await Generator.load(gguf, { adapter: path.join(run, 'adapter') });
    const int8 = await OnnxDecoder.load(path.join(out, 'onnx/model_quantized.onnx'));
    for (const question of QUESTIONS) {
      const prompt = Array.from(
        tok.encode(tok.applyChatTemplate([{ role: 'user', content: question }], { addGenerationPrompt: true }), { addSpecialTokens: false })
      );
      const strip = (ids: number[]) => (ids[ids.length - 1] === 2 ? ids.slice(0, -1) : ids);
      const candle = await gen.generate(question, { maxTokens: 16 });
      const fp32 = strip(await transformersJsGreedy(tjs, out, prompt, 16, 'fp32'));
      console.log(
        `${question}\n  candle+adapter: ${JSON.stringify(candle.text)}\n  transformers.js fp32: ${JSON.stringify(tok.decode(fp32, { skipSpecialTokens: true }))}`
      );
      expect(fp32).toEqual(candle.tokens);
      const q8 = strip(await transformersJsGreedy(tjs, out, prompt, 16));
      console.log(`  transformers.js int8: ${JSON.stringify(tok.decode(q8, { skipSpecialTokens: true }))}`);
      expect(q8).toEqual(await int8.greedy(prompt, 16, [2]));
    }
  }, 900_000);
});
