// Serving a training run folder: `train()` writes tinyforge.json (base path + adapter/), and the
// service must answer with base + adapter (what Generator.load(base, { adapter }) says), not with
// the bare base model.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Generator, train } from '@tinyforge/native';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEngine, resolveServeTarget } from '../../ts/serve/load-engine.js';
import { startService } from '../../ts/serve/service.js';
import { createLogger } from '../../ts/serve/log.js';
import { post, tinyModel } from './helpers.js';

let model: { path: string; cleanup: () => void };
let run: string;

beforeAll(async () => {
  model = await tinyModel();
  const dir = path.dirname(model.path);
  const data = path.join(dir, 'data.jsonl');
  writeFileSync(
    data,
    `${Array.from({ length: 8 }, (_, i) => JSON.stringify({ input: `Question ${i}?`, output: `Answer ${i}.` })).join('\n')}\n`
  );
  run = path.join(dir, 'run');
  await train({ base: model.path, data, out: run, maxSteps: 3, batchSize: 2, lr: 2e-2, targetModules: ['q_proj', 'v_proj', 'up_proj'] });
});

afterAll(() => model?.cleanup());

describe('serving a training run folder', () => {
  it('resolves base + adapter from tinyforge.json and answers with the adapter applied', async () => {
    const target = resolveServeTarget(run);
    expect(target).toMatchObject({ kind: 'run', model: model.path, adapter: path.join(run, 'adapter') });

    const service = await startService({ dir: run, port: 0, logger: createLogger('silent') }, false);
    try {
      const url = `http://127.0.0.1:${service.port}`;
      const res = await post(url, '/predict', { text: 'Question 3?', max_tokens: 6 });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { output: string; confidence: number };
      const tuned = await (await Generator.load(model.path, { adapter: path.join(run, 'adapter') })).generate('Question 3?', {
        maxTokens: 6,
      });
      const plain = await (await Generator.load(model.path)).generate('Question 3?', { maxTokens: 6 });
      expect(body.output).toBe(tuned.text);
      const geo = Math.exp(tuned.tokenProbs.reduce((s, p) => s + Math.log(p), 0) / tuned.tokenProbs.length);
      expect(body.confidence).toBeCloseTo(geo, 9);
      // The adapter matters: the base model's probabilities differ.
      expect(tuned.tokenProbs[0]).not.toBeCloseTo(plain.tokenProbs[0] ?? 0, 4);
    } finally {
      await service.stop();
    }
    const engine = await loadEngine(target);
    expect(engine.info.id).toBe('run');
  });
});
