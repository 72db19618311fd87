// Loading tinyforge.config.json: defaults, then the file, then TINYFORGE_<KEY> env overrides.
// Every problem (unknown key, wrong type, bad env value) is collected and reported at once as one
// INVALID_CONFIG error naming the file and key.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ForgeError } from '../errors.js';
import { CONFIG_KEYS, type ConfigKey, type ConfigProblem, checkValue, envName, parseEnvValue } from './schema.js';
import { CONFIG_FILE, findProjectRoot } from './project.js';

export interface TinyForgeConfig {
  base: string;
  data: string;
  out: string;
  epochs: number;
  lr: number;
  batchSize: number;
  gradAccum: number;
  loraR: number;
  loraAlpha: number;
  targetModules: string[];
  maxSeqLen: number;
  evalSplit: number;
  seed: number;
  export: { quantize: 'int8' | 'int8-blocks' | 'int4' | 'none' };
  serve: { port: number; host: string };
}

export type ConfigSource = 'default' | 'file' | 'env';

export interface LoadedConfig {
  config: TinyForgeConfig;
  /** The config file read, if any. */
  file: string | undefined;
  /** The project root (folder of the config file), if any. */
  root: string | undefined;
  /** Where each key's value came from. */
  sources: Record<string, ConfigSource>;
}

function getPath(obj: Record<string, unknown>, key: string): unknown {
  let cur: unknown = obj;
  for (const part of key.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function setPath(obj: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let cur = obj;
  for (const part of parts.slice(0, -1)) cur = (cur[part] ??= {}) as Record<string, unknown>;
  cur[parts[parts.length - 1]!] = value;
}

/** The defaults as a config object (what `init` writes). */
export function defaultConfig(): TinyForgeConfig {
  const out: Record<string, unknown> = {};
  for (const spec of CONFIG_KEYS) setPath(out, spec.key, structuredClone(spec.default));
  return out as unknown as TinyForgeConfig;
}

/** Unknown keys, wrong types and out-of-range values in a parsed config file. */
export function validateConfigObject(raw: unknown): ConfigProblem[] {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return [{ key: '', reason: 'must be a JSON object' }];
  const problems: ConfigProblem[] = [];
  const known = new Map<string, ConfigKey>(CONFIG_KEYS.map((k) => [k.key, k]));
  const groups = new Set(CONFIG_KEYS.filter((k) => k.key.includes('.')).map((k) => k.key.split('.')[0]!));
  const walk = (obj: Record<string, unknown>, prefix: string) => {
    for (const [name, value] of Object.entries(obj)) {
      const key = prefix ? `${prefix}.${name}` : name;
      if (!prefix && name === '$schema') continue;
      if (!prefix && groups.has(name)) {
        if (value === null || typeof value !== 'object' || Array.isArray(value)) problems.push({ key, reason: 'must be an object' });
        else walk(value as Record<string, unknown>, key);
        continue;
      }
      const spec = known.get(key);
      if (!spec) {
        problems.push({ key, reason: 'unknown key' });
        continue;
      }
      const reason = checkValue(spec, value);
      if (reason) problems.push({ key, reason });
    }
  };
  walk(raw as Record<string, unknown>, '');
  return problems;
}

function invalid(where: string, problems: ConfigProblem[]): ForgeError {
  const lines = problems.map((p) => `  - ${p.key || '(root)'}: ${p.reason}`).join('\n');
  return new ForgeError('INVALID_CONFIG', `${where} is invalid:\n${lines}`, {
    suggestion: `fix these keys (known keys: ${CONFIG_KEYS.map((k) => k.key).join(', ')})`,
  });
}

/**
 * Loads the config: built-in defaults, overlaid by `file` (default: the project's
 * tinyforge.config.json, found by walking up from cwd), overlaid by TINYFORGE_<KEY> env values.
 */
export function loadConfig(options: { cwd?: string; file?: string; env?: NodeJS.ProcessEnv } = {}): LoadedConfig {
  const env = options.env ?? process.env;
  let file = options.file ? path.resolve(options.cwd ?? process.cwd(), options.file) : undefined;
  if (!file) {
    const root = findProjectRoot(options.cwd);
    if (root) file = path.join(root, CONFIG_FILE);
  } else if (!existsSync(file)) {
    throw new ForgeError('INVALID_CONFIG', `config file ${file} does not exist`, { suggestion: 'run `foremforge init` to create one' });
  }
  const config = defaultConfig() as unknown as Record<string, unknown>;
  const sources: Record<string, ConfigSource> = Object.fromEntries(CONFIG_KEYS.map((k) => [k.key, 'default' as ConfigSource]));
  if (file) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new ForgeError('INVALID_CONFIG', `${file} is not valid JSON: ${(err as Error).message}`, {
        suggestion: 'fix the JSON syntax, or delete the file and run `foremforge init`',
        cause: err,
      });
    }
    const problems = validateConfigObject(raw);
    if (problems.length > 0) throw invalid(file, problems);
    for (const spec of CONFIG_KEYS) {
      const value = getPath(raw as Record<string, unknown>, spec.key);
      if (value !== undefined) {
        setPath(config, spec.key, value);
        sources[spec.key] = 'file';
      }
    }
  }
  const envProblems: ConfigProblem[] = [];
  for (const spec of CONFIG_KEYS) {
    const raw = env[envName(spec.key)];
    if (raw === undefined) continue;
    const value = parseEnvValue(spec, raw);
    const reason = checkValue(spec, value);
    if (reason) envProblems.push({ key: envName(spec.key), reason });
    else {
      setPath(config, spec.key, value);
      sources[spec.key] = 'env';
    }
  }
  if (envProblems.length > 0) throw invalid('the environment', envProblems);
  return { config: config as unknown as TinyForgeConfig, file, root: file ? path.dirname(file) : undefined, sources };
}

/**
 * Overlays a command's parsed flags on the loaded config (flags win). Flag names are the keys
 * (`batchSize`, `loraR`); for grouped keys a command passes its group, so `serve --port` sets
 * `serve.port` and `export --quantize` sets `export.quantize`. Undefined flags are ignored, flags
 * that are not config keys (e.g. `--json`) are left out, values are checked against the schema.
 */
export function applyFlags(
  config: TinyForgeConfig,
  flags: Record<string, unknown>,
  options: { group?: 'export' | 'serve' } = {}
): TinyForgeConfig {
  const out = structuredClone(config) as unknown as Record<string, unknown>;
  const problems: ConfigProblem[] = [];
  for (const [name, value] of Object.entries(flags)) {
    if (value === undefined) continue;
    const spec =
      CONFIG_KEYS.find((k) => k.key === (options.group ? `${options.group}.${name}` : name)) ?? CONFIG_KEYS.find((k) => k.key === name);
    if (!spec) continue;
    const reason = checkValue(spec, value);
    if (reason) problems.push({ key: `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, reason });
    else setPath(out, spec.key, value);
  }
  if (problems.length > 0) {
    throw new ForgeError('INVALID_ARGUMENT', problems.map((p) => `${p.key} ${p.reason}`).join('; '), {
      suggestion: 'see --help for the accepted values',
    });
  }
  return out as unknown as TinyForgeConfig;
}
