// @huggingface/transformers (transformers.js) as an independent runtime for exported folders.
// It is an anchor, never a dependency of the package: it installs on demand into benches/anchors/
// (the versions pinned in benches/anchors/package.json, ONNXRUNTIME_NODE_INSTALL=skip, as the
// benches do), once; later runs reuse the install. When it cannot be installed or loaded the
// caller skips with the printed reason.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ortExtraSessionOptions } from '../../ts/native.js';
import { ROOT } from './cli.js';

const ANCHORS = path.join(ROOT, 'benches/anchors');
const NAME = '@huggingface/transformers';

// The slice of the transformers.js API the tests use.
export interface TransformersJs {
  env: { allowRemoteModels: boolean; allowLocalModels: boolean; localModelPath: string };
  AutoTokenizer: { from_pretrained(name: string): Promise<TjsTokenizer> };
  AutoModelForCausalLM: { from_pretrained(name: string, options?: Record<string, unknown>): Promise<TjsModel> };
  Tensor: new (type: string, data: BigInt64Array, dims: number[]) => unknown;
}
export interface TjsTokenizer {
  (text: string, options?: Record<string, unknown>): { input_ids: unknown; attention_mask: unknown };
  encode(text: string, options?: Record<string, unknown>): number[];
  decode(ids: number[], options?: Record<string, unknown>): string;
  apply_chat_template(messages: { role: string; content: string }[], options?: Record<string, unknown>): string;
}
export interface TjsModel {
  generate(options: Record<string, unknown>): Promise<{ tolist(): (bigint | number)[][] }>;
  dispose(): Promise<unknown>;
}

const installed = () => existsSync(path.join(ANCHORS, 'node_modules', NAME, 'package.json'));

let cached: Promise<{ tjs?: TransformersJs; reason?: string }> | undefined;

/** transformers.js, installed into benches/anchors on first use; `reason` says why it is not there. */
export function loadTransformersJs(): Promise<{ tjs?: TransformersJs; reason?: string }> {
  cached ??= (async () => {
    if (!installed()) {
      const r = spawnSync('npm', ['install', '--prefix', ANCHORS, '--no-audit', '--no-fund', '--loglevel=error'], {
        env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
        encoding: 'utf8',
        timeout: 900_000,
      });
      if (r.status !== 0 || !installed()) {
        return {
          reason: `npm install in benches/anchors failed (exit ${r.status ?? r.signal}): ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`,
        };
      }
    }
    try {
      const resolved = createRequire(path.join(ANCHORS, 'package.json')).resolve(NAME);
      const tjs = (await import(pathToFileURL(resolved).href)) as TransformersJs;
      return { tjs };
    } catch (err) {
      return { reason: `${NAME} is installed in benches/anchors but does not load: ${(err as Error).message}` };
    }
  })();
  return cached;
}

/**
 * Greedy generation with transformers.js from the export folder `dir`, exactly as a user loads
 * it (offline, no options but the dtype when given): the ids after the prompt, EOS included.
 */
export async function transformersJsGreedy(
  tjs: TransformersJs,
  dir: string,
  prompt: number[],
  maxNewTokens: number,
  dtype?: string
): Promise<number[]> {
  tjs.env.allowRemoteModels = false;
  tjs.env.allowLocalModels = true;
  tjs.env.localModelPath = path.dirname(dir);
  // Our sessions' config on this CPU (the int8 MatMulInteger exact on x86 CPUs without VNNI).
  const model = await tjs.AutoModelForCausalLM.from_pretrained(path.basename(dir), {
    ...(dtype ? { dtype } : {}),
    session_options: { extra: ortExtraSessionOptions() },
  });
  try {
    const ids = BigInt64Array.from(prompt.map(BigInt));
    const out = await model.generate({
      input_ids: new tjs.Tensor('int64', ids, [1, prompt.length]),
      attention_mask: new tjs.Tensor('int64', BigInt64Array.from(prompt.map(() => 1n)), [1, prompt.length]),
      max_new_tokens: maxNewTokens,
      do_sample: false,
    });
    return out.tolist()[0]!.slice(prompt.length).map(Number);
  } finally {
    await model.dispose();
  }
}
