// The check an export runs before it is moved into place: the written graph loads in ONNX
// Runtime, a prefill gives finite logits of the right shape, one cached decode step gives the
// same logits as recomputing the whole sequence (the KV cache is wired right), and with
// --keep-fp32 the quantized model's greedy choices are compared with the fp32 model's.
// `OnnxDecoder` is also the greedy loop tests compare other runtimes with.
import { createRequire } from 'node:module';
import type { OnnxModel, OnnxTensor } from '@tinyforge/native';
import { ForgeError } from '../errors.js';

const native = () => createRequire(import.meta.url)('@tinyforge/native') as typeof import('@tinyforge/native');

const int64 = (values: number[]): OnnxTensor => ({ dims: [1, values.length], data: BigInt64Array.from(values.map(BigInt)) });

function argmax(v: Float32Array, offset: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (v[offset + i]! > v[offset + best]!) best = i;
  return best;
}

/** Greedy decoding over an exported decoder (Optimum I/O names, KV cache fed back). */
export class OnnxDecoder {
  private constructor(
    readonly model: OnnxModel,
    private readonly layers: number,
    private readonly kvHeads: number,
    private readonly headDim: number,
  ) {}

  static async load(file: string, threads?: number): Promise<OnnxDecoder> {
    const model = await native().OnnxModel.load(file, threads ? { threads } : {});
    const past = model.inputs.filter((i) => /^past_key_values\.\d+\.key$/.test(i.name));
    const first = past[0];
    if (!first || first.dims.length !== 4 || first.dims[1]! < 1 || first.dims[3]! < 1) {
      throw new ForgeError('EXPORT_CHECK_FAILED', `${file}: no past_key_values.N.key input of shape [batch, kv_heads, past, head_dim]`);
    }
    return new OnnxDecoder(model, past.length, first.dims[1]!, first.dims[3]!);
  }

  /** Runs `ids` after `past` cached positions; returns logits [ids.length, vocab] and the new cache. */
  async step(ids: number[], past: Record<string, OnnxTensor> | undefined, pastLen: number): Promise<{ logits: Float32Array; vocab: number; cache: Record<string, OnnxTensor> }> {
    const feeds: Record<string, OnnxTensor> = {
      input_ids: int64(ids),
      attention_mask: int64(new Array<number>(pastLen + ids.length).fill(1)),
      position_ids: int64(ids.map((_, i) => pastLen + i)),
    };
    for (let l = 0; l < this.layers; l++) {
      for (const kind of ['key', 'value']) {
        feeds[`past_key_values.${l}.${kind}`] = past?.[`present.${l}.${kind}`] ?? { dims: [1, this.kvHeads, 0, this.headDim], data: new Float32Array(0) };
      }
    }
    const out = await this.model.run(feeds);
    const logits = out.logits;
    if (!logits || !(logits.data instanceof Float32Array) || logits.dims.length !== 3 || logits.dims[1] !== ids.length) {
      throw new ForgeError('EXPORT_CHECK_FAILED', `${this.model.path}: logits of shape ${JSON.stringify(logits?.dims)} for ${ids.length} tokens`);
    }
    return { logits: logits.data, vocab: logits.dims[2]!, cache: out };
  }

  /** Greedy continuation of `prompt`: up to `maxTokens` ids, stopping after an id in `eos`. */
  async greedy(prompt: number[], maxTokens: number, eos: number[] = []): Promise<number[]> {
    let { logits, vocab, cache } = await this.step(prompt, undefined, 0);
    let next = argmax(logits, (prompt.length - 1) * vocab, vocab);
    const out: number[] = [];
    let len = prompt.length;
    while (out.length < maxTokens && !eos.includes(next)) {
      out.push(next);
      ({ logits, vocab, cache } = await this.step([next], cache, len));
      len += 1;
      next = argmax(logits, 0, vocab);
    }
    return out;
  }

  /** The greedy choice at every position of a prefill over `ids`. */
  async top1(ids: number[]): Promise<number[]> {
    const { logits, vocab } = await this.step(ids, undefined, 0);
    return ids.map((_, i) => argmax(logits, i * vocab, vocab));
  }
}

export interface ExportCheck {
  promptTokens: number;
  /** Largest |cached step − full recompute| over the last position's logits. */
  kvCacheMaxDiff: number;
  /** With an fp32 twin: share of prompt positions whose top-1 token agrees with fp32. */
  top1AgreementWithFp32?: number;
  onnxruntime: string;
}

/**
 * Loads `file`, checks prefill and one cached step; compares top-1 with `fp32File` when given.
 * A quantized graph quantizes activations per tensor at run time, so a 1-row step and an n-row
 * prefill use different scales: its tolerance is wider, still far below what a miswired cache
 * gives (logits of another position, off by their whole range).
 */
export async function checkExport(file: string, prompt: number[], quantized: boolean, fp32File?: string): Promise<ExportCheck> {
  if (prompt.length < 2) throw new ForgeError('EXPORT_CHECK_FAILED', 'the check prompt needs at least 2 tokens');
  const dec = await OnnxDecoder.load(file, 1);
  const full = await dec.step(prompt, undefined, 0);
  if (!full.logits.every(Number.isFinite)) throw new ForgeError('EXPORT_CHECK_FAILED', `${file}: the prefill gave non-finite logits`);
  const head = await dec.step(prompt.slice(0, -1), undefined, 0);
  const cached = await dec.step(prompt.slice(-1), head.cache, prompt.length - 1);
  const last = full.logits.subarray((prompt.length - 1) * full.vocab);
  let maxDiff = 0;
  let maxAbs = 0;
  for (let i = 0; i < full.vocab; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(cached.logits[i]! - last[i]!));
    maxAbs = Math.max(maxAbs, Math.abs(last[i]!));
  }
  if (!(maxDiff <= (quantized ? 0.25 : 1e-3) * Math.max(1, maxAbs))) {
    throw new ForgeError('EXPORT_CHECK_FAILED', `${file}: a cached decode step differs from recomputing the sequence by ${maxDiff} (logits up to ${maxAbs})`);
  }
  const check: ExportCheck = { promptTokens: prompt.length, kvCacheMaxDiff: maxDiff, onnxruntime: native().runtimeInfo()?.version ?? 'unknown' };
  if (fp32File) {
    const ref = await (await OnnxDecoder.load(fp32File, 1)).top1(prompt);
    const got = await dec.top1(prompt);
    check.top1AgreementWithFp32 = got.filter((t, i) => t === ref[i]).length / prompt.length;
  }
  return check;
}
