// The README's main job, as a user runs it: `foremforge demo` (what `npm run demo` calls) on the
// real default model pulls SmolLM2-135M-Instruct, fine-tunes it on the sample data, exports INT8
// ONNX, serves the export over HTTP on loopback, asks a held-out question and stops the service.
// The test checks each step's trace in the output, the export folder on disk, and that the answer
// came over HTTP from the served INT8 model (a non-empty answer with a confidence in (0, 1]).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { smollm2GgufPath } from '../helpers/models.js';
import { tempDir } from '../helpers/tmp.js';

describe('foremforge demo on SmolLM2-135M-Instruct', () => {
  it('trains, exports INT8, serves and answers over HTTP', async () => {
    await smollm2GgufPath(); // fills the model cache the demo pulls from (fails under CI=true if it cannot)
    const dir = tempDir('demo-e2e-');
    const out = path.join(dir, 'run');
    const t0 = performance.now();
    const r = await runCli(['demo', '--out', out], { timeoutMs: 900_000 });
    const seconds = (performance.now() - t0) / 1000;
    console.log(`demo: exit ${r.code} in ${seconds.toFixed(0)} s\n${r.stdout}\n${r.stderr.slice(-2000)}`);
    expect(r.code).toBe(0);
    for (const step of ['1/6', '2/6', '3/6', '4/6', '5/6', '6/6']) expect(r.stdout).toContain(step);

    const exported = `${out}-int8`;
    expect(existsSync(path.join(exported, 'onnx/model_quantized.onnx'))).toBe(true);
    const manifest = JSON.parse(readFileSync(path.join(exported, 'tinyforge.json'), 'utf8')) as { quantization?: unknown };
    expect(manifest.quantization).toBeDefined();
    // The printed size counts the weights beside the graph (onnx/model_quantized.onnx_data): INT8
    // SmolLM2 is ~150 MB, the graph file alone 0.2 MB.
    const size = /model_quantized\.onnx \(\+ _data\) ([0-9.]+) MB/.exec(r.stdout);
    expect(Number(size?.[1])).toBeGreaterThan(100);
    expect(r.stdout).toMatch(/quality: perplexity [0-9.]+ on \d+ held-out tokens; fp32 [0-9.]+/);

    const served = /served \(fine-tuned, INT8, over HTTP\): (.*)\n\s+\(confidence ([0-9.]+)\)/.exec(r.stdout);
    expect(served, 'the served answer line').not.toBeNull();
    expect(served![1]!.trim().length).toBeGreaterThan(0);
    const confidence = Number(served![2]);
    expect(confidence).toBeGreaterThan(0);
    expect(confidence).toBeLessThanOrEqual(1);
    expect(r.stdout).toMatch(
      /time: pull [0-9.]+ s, data [0-9.]+ s, train [0-9.]+ s, export [0-9.]+ s, serve \(to \/ready\) [0-9.]+ s, ask \(HTTP\) [0-9.]+ s/
    );
  }, 900_000); // the whole pipeline: about 90 s alone, more beside the other e2e tests on 2 cores
});
