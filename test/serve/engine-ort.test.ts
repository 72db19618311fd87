// The Engine contract (engine-contract.ts) on the ONNX Runtime engine over a tiny export folder,
// plus what only a streaming, cancellable engine can pass: one delta per token, and an abort
// mid-stream stops the generation (no done event) and frees its slot for the next request.
import { describe, expect, it } from 'vitest';
import type { EngineEvent } from '../../ts/serve/engine.js';
import { OrtEngine } from '../../ts/serve/engines/ort.js';
import { loadEngine, resolveServeTarget } from '../../ts/serve/load-engine.js';
import { pipelineExport } from './ort-fixture.js';
import { GREEDY, collect, describeEngineContract } from './engine-contract.js';

describeEngineContract('ort (tiny export, int8)', async () => {
  const fx = await pipelineExport();
  return { engine: await OrtEngine.load({ dir: fx.dir, id: 'tiny', threads: 1, maxBatch: 4 }), cleanup: fx.cleanup };
});

describe('ort engine: streaming and cancellation', () => {
  it('loadEngine picks it for an export folder; one delta per token; abort frees the slot', async () => {
    const fx = await pipelineExport();
    const engine = await loadEngine(resolveServeTarget(fx.dir), { threads: 1, maxBatch: 1 });
    try {
      expect(engine.info.engine).toBe('ort');
      expect(engine.info.streaming).toBe(true);
      const r = await collect(engine, { kind: 'text', text: 'Once upon a time' }, { maxTokens: 10, topLogprobs: 2 });
      expect(r.events.filter((e) => e.type === 'delta').length).toBe(r.tokens.length);
      expect(r.tokens.every((t) => t.topLogprobs?.length === 2)).toBe(true);
      const controller = new AbortController();
      const events: EngineEvent[] = [];
      const run = (async () => {
        for await (const e of engine.generate(
          { prompt: { kind: 'text', text: 'go' }, params: { ...GREEDY, maxTokens: 5000, temperature: 1 } },
          controller.signal
        )) {
          events.push(e);
          if (events.length === 3) controller.abort();
        }
      })();
      await expect(run).rejects.toBeDefined();
      expect(events.length).toBe(3);
      // maxBatch 1: the next request only runs if the aborted one released the slot.
      const again = await collect(engine, { kind: 'text', text: 'Once upon a time' }, { maxTokens: 10 });
      expect(again.text).toBe(r.text);
    } finally {
      await engine.close();
      fx.cleanup();
    }
  });
});
