// The demo behind `npm run demo`: the main job end to end on the default model, with what exists
// today: get SmolLM2-135M-Instruct, check the sample data, fine-tune a LoRA adapter on it, then
// ask a held-out question (one the training set words differently) of the base model and of the
// fine-tuned one. Export to INT8 ONNX and serving are not built yet; the demo says so.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Generation } from '@tinyforge/native';
import { assertUsable } from '../dataset/validate.js';
import { DEFAULT_MODEL } from '../models/catalog.js';
import { pullModel } from '../models/pull.js';
import { native } from '../native.js';
import { type TrainProgress, type TrainResult, runTraining } from './train.js';

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const SAMPLE_TRAIN = path.join(PACKAGE_ROOT, 'examples/sample_qna.jsonl');
export const SAMPLE_EVAL = path.join(PACKAGE_ROOT, 'examples/sample_qna.eval.jsonl');

export interface DemoOptions {
  /** Run folder for the fine-tune (must not hold another run's checkpoints). */
  out: string;
  epochs: number;
  lr: number;
  /** Default: the first held-out question of examples/sample_qna.eval.jsonl. */
  question?: string;
  log: (line: string) => void;
  onProgress?: (p: TrainProgress) => void;
  signal?: AbortSignal;
}

export interface DemoResult {
  basePath: string;
  training: TrainResult;
  question: string;
  expected?: string;
  base: Generation;
  tuned: Generation;
}

function firstHeldOut(): { input: string; output?: string } {
  const line = readFileSync(SAMPLE_EVAL, 'utf8').split('\n').find((l) => l.trim().length > 0);
  if (!line) throw new Error(`${SAMPLE_EVAL} has no records`);
  return JSON.parse(line) as { input: string; output?: string };
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const { log } = options;
  log(`1/4 base model: ${DEFAULT_MODEL}`);
  const pulled = await pullModel(DEFAULT_MODEL, options.signal ? { signal: options.signal } : {});
  log(`    ${pulled.path} (${pulled.format}, from ${pulled.source}, sha256 ${pulled.sha256.slice(0, 12)}…)`);

  log(`2/4 data: ${path.relative(process.cwd(), SAMPLE_TRAIN)}`);
  const summary = await assertUsable(SAMPLE_TRAIN);
  log(`    ${summary.valid} valid records`);

  log(`3/4 LoRA fine-tune: ${options.epochs} epochs, lr ${options.lr}, r 16, alpha 32 on attention and MLP projections`);
  const training = await runTraining({
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
    seed: 42,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const first = training.history[0]?.loss;
  log(`    train loss ${first?.toFixed(3)} → ${training.finalLoss?.toFixed(3)}` +
    (training.evalLoss != null ? `, held-out eval loss ${training.evalLoss.toFixed(3)}` : '') +
    `, ${Math.round(training.tokensPerSecond)} tok/s`);

  const heldOut = options.question === undefined ? firstHeldOut() : { input: options.question };
  log(`4/4 ask: "${heldOut.input}"`);
  const messages = [{ role: 'user', content: heldOut.input }];
  const params = { maxTokens: 64, temperature: 0 };
  const baseGen = await native().Generator.load(pulled.path);
  const base = await baseGen.generate(messages, params);
  const tunedGen = await native().Generator.load(pulled.path, { adapter: training.outputDir ?? path.join(training.runDir, 'adapter') });
  const tuned = await tunedGen.generate(messages, params);
  return { basePath: pulled.path, training, question: heldOut.input, ...(heldOut.output ? { expected: heldOut.output } : {}), base, tuned };
}
