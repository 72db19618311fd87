// The Hugging Face side files of an export folder: config.json, generation_config.json,
// tokenizer.json and tokenizer_config.json (with the chat template), laid out so that
// `@huggingface/transformers` loads the folder as a text-generation model as is. From an HF folder
// they are copied (config.json keeps every key other tools read); from a GGUF they are rebuilt
// from its metadata by the native core.
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ForgeError } from '../errors.js';
import { native } from '../native.js';

type Json = Record<string, unknown>;

/** transformers.js `dtype` → the file it loads from `onnx/` (its DEFAULT_DTYPE_SUFFIX_MAPPING). */
export const TRANSFORMERS_JS_FILES = { fp32: 'model.onnx', q8: 'model_quantized.onnx', q4: 'model_q4.onnx' } as const;
export type TransformersJsDtype = keyof typeof TRANSFORMERS_JS_FILES;

function readJson(file: string): Json {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Json;
  } catch (err) {
    throw new ForgeError('MODEL_INVALID', `${file}: ${(err as Error).message}`, {
      suggestion: 'the base model folder is damaged; pull or copy it again',
    });
  }
}

const writeJson = (file: string, value: unknown): void => writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);

/** "linear x2" (modelInfo's summary; GGUF carries only a type and a factor) → HF rope_scaling. */
function ropeScaling(summary: string | undefined | null): Json | null {
  if (!summary) return null;
  const m = /^(\S+) x([\d.eE+-]+)$/.exec(summary);
  return m ? { rope_type: m[1], factor: Number(m[2]) } : null;
}

/** config.json of a GGUF model, from the same metadata the core builds the weights' config from. */
function configFromGguf(gguf: string): Json {
  const c = native().modelInfo(gguf);
  const headDim = c.hiddenSize / c.numAttentionHeads === c.headDim ? {} : { head_dim: c.headDim };
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_act: 'silu',
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numHiddenLayers,
    num_attention_heads: c.numAttentionHeads,
    num_key_value_heads: c.numKeyValueHeads,
    ...headDim,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    rope_scaling: ropeScaling(c.ropeScaling),
    max_position_embeddings: c.maxPositionEmbeddings,
    vocab_size: c.vocabSize,
    tie_word_embeddings: c.tieWordEmbeddings,
    bos_token_id: c.bosTokenId ?? null,
    eos_token_id: c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : c.eosTokenIds,
    attention_bias: false,
    mlp_bias: false,
    use_cache: true,
  };
}

const ids = (v: unknown): number[] =>
  typeof v === 'number' ? [v] : Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : [];

export interface HfFilesResult {
  /** Generation stops on any of these. */
  eosTokenIds: number[];
  chatTemplate: boolean;
}

/** The external data file ONNX Runtime and transformers.js 4.x read next to `onnx/<file>`. */
export function externalDataFile(modelFile: string): string {
  return `${modelFile}_data`;
}

/**
 * transformers.js `use_external_data_format`, keyed by the file names in `dir/onnx` that have
 * their weights in `<file>_data` (one chunk each): without it transformers.js would not fetch
 * the data file in the browser (Node resolves it next to the model itself).
 */
export function externalDataFormat(dir: string): Record<string, number> {
  const onnx = path.join(dir, 'onnx');
  if (!existsSync(onnx)) return {};
  const names = readdirSync(onnx).filter(
    (n) => n.endsWith('.onnx') && !n.startsWith('.') && existsSync(path.join(onnx, externalDataFile(n)))
  );
  return Object.fromEntries(names.sort().map((n) => [n, 1]));
}

/**
 * Writes config.json, generation_config.json, tokenizer.json and tokenizer_config.json into
 * `dir`. `dtype` is the transformers.js dtype of the default model file, recorded in config.json
 * (`transformers.js_config.dtype`) so `from_pretrained(dir)` picks that file without options.
 */
export function writeHfFiles(modelPath: string, dir: string, dtype: TransformersJsDtype): HfFilesResult {
  const gguf = statSync(modelPath).isFile();
  let config: Json;
  let generation: Json = {};
  if (gguf) {
    config = configFromGguf(modelPath);
    native().Tokenizer.fromGguf(modelPath).savePretrained(dir);
  } else {
    config = readJson(path.join(modelPath, 'config.json'));
    const tokenizerJson = path.join(modelPath, 'tokenizer.json');
    if (!existsSync(tokenizerJson)) {
      throw new ForgeError('MODEL_INVALID', `${tokenizerJson}: missing`, { suggestion: 'the model folder needs its tokenizer.json' });
    }
    copyFileSync(tokenizerJson, path.join(dir, 'tokenizer.json'));
    const tcFile = path.join(modelPath, 'tokenizer_config.json');
    const tc = existsSync(tcFile) ? readJson(tcFile) : {};
    // Newer HF folders keep the template in chat_template.jinja; transformers.js reads it from
    // tokenizer_config.json, so it goes there.
    const jinja = path.join(modelPath, 'chat_template.jinja');
    if (tc.chat_template === undefined && existsSync(jinja)) tc.chat_template = readFileSync(jinja, 'utf8');
    writeJson(path.join(dir, 'tokenizer_config.json'), tc);
    for (const name of ['special_tokens_map.json']) {
      if (existsSync(path.join(modelPath, name))) copyFileSync(path.join(modelPath, name), path.join(dir, name));
    }
    const genFile = path.join(modelPath, 'generation_config.json');
    if (existsSync(genFile)) generation = readJson(genFile);
  }
  config.model_type ??= 'llama';
  if (!Array.isArray(config.architectures) || config.architectures.length === 0) config.architectures = ['LlamaForCausalLM'];
  // The ONNX weights are float32 (or quantized from float32), whatever the source stored.
  config.torch_dtype = 'float32';
  const external = externalDataFormat(dir);
  config['transformers.js_config'] = {
    ...((config['transformers.js_config'] as Json | undefined) ?? {}),
    dtype,
    ...(Object.keys(external).length > 0 ? { use_external_data_format: external } : {}),
  };
  writeJson(path.join(dir, 'config.json'), config);

  const tok = native().Tokenizer.fromFile(dir);
  const eos = [
    ...new Set([...ids(generation.eos_token_id), ...ids(config.eos_token_id), ...(tok.eosTokenId != null ? [tok.eosTokenId] : [])]),
  ];
  const bos = generation.bos_token_id ?? config.bos_token_id ?? tok.bosTokenId ?? undefined;
  const pad = generation.pad_token_id ?? tok.padTokenId ?? eos[0];
  writeJson(path.join(dir, 'generation_config.json'), {
    ...generation,
    ...(bos != null ? { bos_token_id: bos } : {}),
    eos_token_id: eos.length === 1 ? eos[0] : eos,
    ...(pad != null ? { pad_token_id: pad } : {}),
    // Greedy unless asked otherwise, with the same default length as our Generator.
    do_sample: generation.do_sample ?? false,
    max_new_tokens: generation.max_new_tokens ?? 128,
  });
  return { eosTokenIds: eos, chatTemplate: tok.chatTemplate !== null };
}
