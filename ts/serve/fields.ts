// Typed reading of a JSON request body: each accessor checks one field and names it in the 400
// (`param`), so a client learns exactly what to fix. Unknown fields are refused the way OpenAI
// does ("Unrecognized request argument"), except a few harmless ones SDKs send and we ignore.
import { ApiError, badParam } from './api-error.js';

export type Json = Record<string, unknown>;

/** Fields OpenAI SDKs and proxies send that do not change the generated text. */
const IGNORED = ['user', 'metadata', 'store', 'service_tier', 'parallel_tool_calls', 'stream_options'];

export function parseJsonObject(body: Buffer): Json {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new ApiError(400, `request body is not valid JSON: ${(err as Error).message}`, { code: 'invalid_json' });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ApiError(400, 'request body must be a JSON object', { code: 'invalid_json' });
  }
  return value as Json;
}

export class Fields {
  constructor(
    readonly body: Json,
    known: readonly string[]
  ) {
    const allowed = new Set([...known, ...IGNORED]);
    for (const key of Object.keys(body)) {
      if (!allowed.has(key)) throw badParam(key, `Unrecognized request argument supplied: ${key}`, 'unknown_parameter');
    }
  }

  has(name: string): boolean {
    return this.body[name] !== undefined && this.body[name] !== null;
  }

  number(name: string, range: { min?: number; max?: number; integer?: boolean; exclusiveMin?: boolean } = {}): number | undefined {
    const v = this.body[name];
    if (v === undefined || v === null) return undefined;
    const kind = range.integer ? 'an integer' : 'a number';
    if (typeof v !== 'number' || !Number.isFinite(v) || (range.integer && !Number.isInteger(v))) {
      throw badParam(name, `${name} must be ${kind}, got ${JSON.stringify(v)}`, 'invalid_type');
    }
    const lowOk = range.min === undefined || (range.exclusiveMin ? v > range.min : v >= range.min);
    if (!lowOk || (range.max !== undefined && v > range.max)) {
      const low = range.min === undefined ? '' : `${range.exclusiveMin ? '>' : '>='} ${range.min}`;
      const high = range.max === undefined ? '' : `<= ${range.max}`;
      throw badParam(name, `${name} must be ${[low, high].filter(Boolean).join(' and ')}, got ${v}`);
    }
    return v;
  }

  boolean(name: string): boolean | undefined {
    const v = this.body[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw badParam(name, `${name} must be a boolean, got ${JSON.stringify(v)}`, 'invalid_type');
    return v;
  }

  string(name: string): string | undefined {
    const v = this.body[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw badParam(name, `${name} must be a string, got ${JSON.stringify(v)}`, 'invalid_type');
    return v;
  }

  /** `stop`: a string or up to 16 strings. */
  stop(name = 'stop'): string[] {
    const v = this.body[name];
    if (v === undefined || v === null) return [];
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || list.some((s) => typeof s !== 'string')) {
      throw badParam(name, `${name} must be a string or an array of strings`, 'invalid_type');
    }
    if (list.length > 16) throw badParam(name, `${name} may hold at most 16 strings, got ${list.length}`);
    return (list as string[]).filter((s) => s !== '');
  }

  /** Refuses a field that is set to anything but its no-op value. */
  onlyDefault(name: string, isDefault: (v: unknown) => boolean, why: string): void {
    const v = this.body[name];
    if (v !== undefined && v !== null && !isDefault(v)) throw badParam(name, `${name} is not supported: ${why}`, 'unsupported_parameter');
  }

  /** `stream_options.include_usage`; only meaningful with `stream: true`. */
  includeUsage(stream: boolean): boolean {
    const v = this.body.stream_options;
    if (v === undefined || v === null) return false;
    if (typeof v !== 'object' || Array.isArray(v)) throw badParam('stream_options', 'stream_options must be an object', 'invalid_type');
    if (!stream) throw badParam('stream_options', 'stream_options is only allowed when stream is true');
    const usage = (v as Json).include_usage;
    if (usage !== undefined && usage !== null && typeof usage !== 'boolean') {
      throw badParam('stream_options.include_usage', 'stream_options.include_usage must be a boolean', 'invalid_type');
    }
    return usage === true;
  }
}
