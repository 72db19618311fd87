// Numeric command-line values, one rule for every command: a bad value is a coded usage error
// (`error[INVALID_ARGUMENT]`, exit 2) that names the flag, the accepted range and the value given.
import { ForgeError } from '../ts/errors.js';

export interface NumberRule {
  /** Whole numbers written as digits only (no sign, no exponent, no decimal point). */
  integer?: boolean;
  /** Inclusive bounds. */
  min?: number;
  max?: number;
  /** Exclusive bounds (a positive rate, a fraction strictly between 0 and 1). */
  above?: number;
  below?: number;
}

function describe(rule: NumberRule): string {
  const kind = rule.integer ? 'an integer' : 'a number';
  const low = rule.min !== undefined ? { v: rule.min, strict: false } : rule.above !== undefined ? { v: rule.above, strict: true } : null;
  const high = rule.max !== undefined ? { v: rule.max, strict: false } : rule.below !== undefined ? { v: rule.below, strict: true } : null;
  if (low && high && !low.strict && !high.strict) return `${kind} from ${low.v} to ${high.v}`;
  if (low && high) return `${kind} ${low.strict ? '>' : '>='} ${low.v} and ${high.strict ? '<' : '<='} ${high.v}`;
  if (low) return `${kind} ${low.strict ? '>' : '>='} ${low.v}`;
  if (high) return `${kind} ${high.strict ? '<' : '<='} ${high.v}`;
  return kind;
}

/** `value` as a number obeying `rule`; otherwise INVALID_ARGUMENT naming `flag`. */
export function numberFlag(flag: string, value: string, rule: NumberRule = {}): number {
  const text = value.trim();
  const n = Number(text);
  const ok =
    text !== '' &&
    Number.isFinite(n) &&
    (!rule.integer || (/^\d+$/.test(text) && Number.isSafeInteger(n))) &&
    (rule.min === undefined || n >= rule.min) &&
    (rule.max === undefined || n <= rule.max) &&
    (rule.above === undefined || n > rule.above) &&
    (rule.below === undefined || n < rule.below);
  if (!ok) throw new ForgeError('INVALID_ARGUMENT', `${flag} must be ${describe(rule)}, got "${value}"`);
  return n;
}

/** `numberFlag` for a flag that may be absent. */
export function optionalNumberFlag(flag: string, value: string | undefined, rule: NumberRule = {}): number | undefined {
  return value === undefined ? undefined : numberFlag(flag, value, rule);
}

/** `numberFlag` as a commander option parser: `.option('--n <n>', 'what', numberOption('--n', rule))`. */
export function numberOption(flag: string, rule: NumberRule = {}): (value: string) => number {
  return (value) => numberFlag(flag, value, rule);
}
