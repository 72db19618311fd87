// The demo behind `npm run demo`: the main job end to end on the default model. Get
// SmolLM2-135M-Instruct, check the sample data, fine-tune a LoRA adapter on it, export the merged
// model to INT8 ONNX, start the inference service on that folder (loopback, a free port), ask it a
// held-out question (one the training set words differently) over HTTP, and stop the service.
// Every step is timed; the base model's answer (candle, no adapter) is printed for contrast.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Generation } from '@tinyforge/native';
import { assertUsable } from '../dataset/validate.js';
import { DEFAULT_MODEL } from '../models/catalog.js';
import { pullModel } from '../models/pull.js';
import { native } from '../native.js';
import { createLogger } from '../serve/log.js';
import { startService } from '../serve/service.js';
import { type ExportProgress, type ExportResult, exportModel } from './export.js';
import { describeQuality } from './export-quality.js';
import { type TrainProgress, type TrainResult, runTraining } from './train.js';

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const SAMPLE_TRAIN = path.join(PACKAGE_ROOT, 'examples/sample_qna.jsonl');
export const SAMPLE_EVAL = path.join(PACKAGE_ROOT, 'examples/sample_qna.eval.jsonl');

export interface DemoOptions {
  /** Run folder for the fine-tune (must not hold another run's checkpoints). */
  out: string;
  /** Export folder. @default `<out>-int8` */
  exportOut?: string;
  epochs: number;
  lr: number;
  /** Default: the first held-out question of examples/sample_qna.eval.jsonl. */
  question?: string;
  log: (line: string) => void;
  onProgress?: (p: TrainProgress) => void;
  onExportProgress?: (p: ExportProgress) => void;
  signal?: AbortSignal;
}

/** What the service answered (`POST /predict`), as it came over HTTP. */
export interface ServedAnswer {
  output: string;
  confidence: number;
  finish_reason?: string;
  usage?: { prompt_tokens: number; completion_tokens: number };
  latency_ms?: number;
}

export interface DemoResult {
  basePath: string;
  training: TrainResult;
  export: ExportResult;
  url: string;
  question: string;
  expected?: string;
  base: Generation;
  served: ServedAnswer;
  /** Wall time of each step, in seconds. */
  seconds: { pull: number; data: number; train: number; export: number; serve: number; ask: number };
}

function firstHeldOut(): { input: string; output?: string } {
  const line = readFileSync(SAMPLE_EVAL, 'utf8')
    .split('\n')
    .find((l) => l.trim().length > 0);
  if (!line) throw new Error(`${SAMPLE_EVAL} has no records`);
  return JSON.parse(line) as { input: string; output?: string };
}

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const value = await f();
  return [value, (performance.now() - t0) / 1000];
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { log } = options;
  const signal = options.signal ? { signal: options.signal } : {};
  log(`1/6 base model: ${DEFAULT_MODEL}`);
  const [pulled, pullS] = await timed(() => pullModel(DEFAULT_MODEL, signal));
  log(`    ${pulled.path} (${pulled.format}, from ${pulled.source}, sha256 ${pulled.sha256.slice(0, 12)}…)`);

  log(`2/6 data: ${path.relative(process.cwd(), SAMPLE_TRAIN)}`);
  const [summary, dataS] = await timed(() => assertUsable(SAMPLE_TRAIN));
  log(`    ${summary.valid} valid records`);

  log(`3/6 LoRA fine-tune: ${options.epochs} epochs, lr ${options.lr}, r 16, alpha 32 on attention and MLP projections`);
  const [training, trainS] = await timed(() =>
    runTraining({
      base: pulled.path,
      data: SAMPLE_TRAIN,
      evalData: SAMPLE_EVAL,
      out: options.out,
      epochs: options.epochs,
      lr: options.lr,
      batchSize: 4,
      // Facts live mostly in the MLP: adapting it as well as attention is what lets the tuned model
      // answer questions worded differently from the training set (measured on the held-out set).
      loraR: 16,
      loraAlpha: 32,
      targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
      // 3 passes over a sample that states each fact three ways kept general-text perplexity
      // within 10% (+8.0%, benches/results/recipe-sweep.md) without the recipe's rehearsal
      // passages, which would add ~3k tokens (~20%) to the demo's training time.
      rehearsal: 0,
      seed: 42,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...signal,
    })
  );
  const first = training.history[0]?.loss;
  log(
    `    train loss ${first?.toFixed(3)} → ${training.finalLoss?.toFixed(3)}` +
      (training.evalLoss != null ? `, held-out eval loss ${training.evalLoss.toFixed(3)}` : '') +
      `, ${Math.round(training.tokensPerSecond)} tok/s`
  );

  const exportOut = options.exportOut ?? `${options.out.replace(/[\\/]+$/, '')}-int8`;
  log(`4/6 export INT8 ONNX: ${exportOut}`);
  const [exported, exportS] = await timed(() =>
    exportModel({
      model: training.runDir,
      out: exportOut,
      quantize: 'int8',
      ...(options.onExportProgress ? { onProgress: options.onExportProgress } : {}),
      ...signal,
    })
  );
  // The graph and its external weights (`<model>_data` beside it).
  const size = exported.files
    .filter((f) => f.path === exported.model || f.path === `${exported.model}_data`)
    .reduce((n, f) => n + f.size, 0);
  log(`    ${exported.model} (+ _data) ${(size / 1e6).toFixed(1)} MB`);
  if (exported.quality) log(`    ${describeQuality(exported.quality)}`);

  log('5/6 serve the export on 127.0.0.1 (a free port)');
  const logger = createLogger('warn');
  const [service, serveS] = await timed(() => startService({ dir: exported.out, host: '127.0.0.1', port: 0, logger }, false));
  const url = `http://127.0.0.1:${service.port}`;
  log(`    ${url} ready`);

  const heldOut = options.question === undefined ? firstHeldOut() : { input: options.question };
  try {
    log(`6/6 ask over HTTP (POST ${url}/predict): "${heldOut.input}"`);
    const [served, askS] = await timed(async () => {
      const res = await fetch(`${url}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text: heldOut.input, max_tokens: 64 }),
        ...signal,
      });
      const body = (await res.json()) as ServedAnswer & { error?: { message: string } };
      if (!res.ok) throw new Error(`POST /predict answered ${res.status}: ${body.error?.message ?? JSON.stringify(body)}`);
      return body;
    });
    // The untuned base, for contrast (the candle model: not what is served).
    const baseGen = await native().Generator.load(pulled.path);
    const base = await baseGen.generate([{ role: 'user', content: heldOut.input }], { maxTokens: 64, temperature: 0 });
    return {
      basePath: pulled.path,
      training,
      export: exported,
      url,
      question: heldOut.input,
      ...(heldOut.output ? { expected: heldOut.output } : {}),
      base,
      served,
      seconds: { pull: pullS, data: dataS, train: trainS, export: exportS, serve: serveS, ask: askS },
    };
  } finally {
    await service.stop();
  }
}
