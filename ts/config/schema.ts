// The tinyforge.config.json schema: one table of keys, from which validation, defaults, env
// overrides (TINYFORGE_<KEY>) and a JSON Schema are all derived, so they never drift apart.
// Every CLI flag of train/export/serve/ingest has a key here; a command reads its flags' defaults
// from the loaded config (precedence: built-in default < config file < env < flag).

export type KeyType = 'string' | 'integer' | 'number' | 'string[]' | 'enum';

export interface ConfigKey {
  /** Dotted path in the config file: `epochs`, `export.quantize`. */
  key: string;
  type: KeyType;
  description: string;
  default?: unknown;
  /** For type 'enum'. */
  choices?: readonly string[];
  min?: number;
  max?: number;
}

export const CONFIG_KEYS: readonly ConfigKey[] = [
  {
    key: 'base',
    type: 'string',
    description: 'base model: catalog name, HF repo id, HF folder or .gguf file',
    default: 'smollm2-135m-instruct',
  },
  { key: 'data', type: 'string', description: 'training data (JSONL)', default: 'data/train.jsonl' },
  { key: 'out', type: 'string', description: 'run folder that training writes', default: 'runs/latest' },
  { key: 'epochs', type: 'integer', description: 'passes over the training data', default: 3, min: 1, max: 1000 },
  { key: 'lr', type: 'number', description: 'peak learning rate (AdamW)', default: 2e-4, min: 0, max: 1 },
  { key: 'batchSize', type: 'integer', description: 'sequences per micro-batch', default: 4, min: 1, max: 4096 },
  { key: 'gradAccum', type: 'integer', description: 'micro-batches per optimizer step', default: 1, min: 1, max: 4096 },
  { key: 'loraR', type: 'integer', description: 'LoRA rank', default: 8, min: 1, max: 1024 },
  { key: 'loraAlpha', type: 'number', description: 'LoRA alpha (scale = alpha / r)', default: 16, min: 0 },
  {
    key: 'targetModules',
    type: 'string[]',
    description: 'projections that get LoRA adapters',
    default: ['q_proj', 'k_proj', 'v_proj', 'o_proj'],
  },
  { key: 'maxSeqLen', type: 'integer', description: 'longest training sequence in tokens', default: 512, min: 8, max: 131072 },
  { key: 'evalSplit', type: 'number', description: 'fraction of the data held out for eval', default: 0.1, min: 0, max: 0.9 },
  { key: 'seed', type: 'integer', description: 'random seed (data order, split, init)', default: 42, min: 0 },
  {
    key: 'export.quantize',
    type: 'enum',
    description: 'ONNX weight format',
    default: 'int8',
    choices: ['int8', 'int8-blocks', 'int4', 'none'],
  },
  { key: 'serve.port', type: 'integer', description: 'HTTP port of the service', default: 8001, min: 0, max: 65535 },
  { key: 'serve.host', type: 'string', description: 'address the service binds', default: '127.0.0.1' },
];

/** `batchSize` → `TINYFORGE_BATCH_SIZE`, `export.quantize` → `TINYFORGE_EXPORT_QUANTIZE`. */
export function envName(key: string): string {
  return `TINYFORGE_${key
    .replace(/\./g, '_')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toUpperCase()}`;
}

export interface ConfigProblem {
  key: string;
  reason: string;
}

/** Checks one value against its key; returns the reason it is wrong, or undefined. */
export function checkValue(spec: ConfigKey, value: unknown): string | undefined {
  switch (spec.type) {
    case 'string':
      return typeof value === 'string' && value.length > 0 ? undefined : 'must be a non-empty string';
    case 'string[]':
      return Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string' && v.length > 0)
        ? undefined
        : 'must be a non-empty array of strings';
    case 'enum':
      return typeof value === 'string' && spec.choices?.includes(value) ? undefined : `must be one of ${spec.choices?.join(', ')}`;
    case 'integer':
    case 'number': {
      if (typeof value !== 'number' || !Number.isFinite(value)) return `must be a ${spec.type}`;
      if (spec.type === 'integer' && !Number.isInteger(value)) return 'must be an integer';
      if (spec.min !== undefined && value < spec.min) return `must be >= ${spec.min}`;
      if (spec.max !== undefined && value > spec.max) return `must be <= ${spec.max}`;
      return undefined;
    }
  }
}

/** Parses an env string into the key's type (numbers, comma-separated lists). */
export function parseEnvValue(spec: ConfigKey, raw: string): unknown {
  if (spec.type === 'integer' || spec.type === 'number') return raw.trim() === '' ? Number.NaN : Number(raw);
  if (spec.type === 'string[]')
    return raw
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  return raw;
}

/** A JSON Schema (draft 2020-12) for editors; generated from CONFIG_KEYS. */
export function configJsonSchema(): Record<string, unknown> {
  const root: Record<string, unknown> = { $schema: { type: 'string' } };
  for (const spec of CONFIG_KEYS) {
    const parts = spec.key.split('.');
    let props = root;
    for (const part of parts.slice(0, -1)) {
      const obj = (props[part] ??= { type: 'object', additionalProperties: false, properties: {} }) as {
        properties: Record<string, unknown>;
      };
      props = obj.properties;
    }
    const s: Record<string, unknown> = { description: spec.description, default: spec.default };
    if (spec.type === 'string[]') Object.assign(s, { type: 'array', items: { type: 'string' }, minItems: 1 });
    else if (spec.type === 'enum') Object.assign(s, { enum: spec.choices });
    else Object.assign(s, { type: spec.type });
    if (spec.min !== undefined) s.minimum = spec.min;
    if (spec.max !== undefined) s.maximum = spec.max;
    props[parts[parts.length - 1]!] = s;
  }
  return { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', additionalProperties: false, properties: root };
}
