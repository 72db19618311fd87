// What "the same record" means. Exact: same kind and same text fields (roles and contents in
// order, a pair's non-blank system included), whatever the key order, JSON spacing or _source.
// Normalized: the same after lowercasing, Unicode NFKC, stripping punctuation and collapsing
// whitespace, so "Hello, World!" and "hello world" collide. Fields are length-prefixed so
// ("ab","c") and ("a","bc") differ.
import { hash64 } from './hash.js';
import { type DataRecord, isBlank } from './record.js';

const PUNCTUATION = /\p{P}+/gu;
const WHITESPACE = /\s+/gu;

export function normalizeText(s: string): string {
  return s.normalize('NFKC').toLowerCase().replace(PUNCTUATION, ' ').replace(WHITESPACE, ' ').trim();
}

const identity = (s: string) => s;

/** The canonical string of a record: kind, then each field as `length:text`. */
export function canonicalForm(record: DataRecord, normalized = false): string {
  const f = normalized ? normalizeText : identity;
  if ('messages' in record) {
    let out = 'm';
    for (const m of record.messages) {
      const c = f(m.content);
      out += `|${m.role}|${c.length}:${c}`;
    }
    return out;
  }
  if ('input' in record) {
    const input = f(record.input);
    const pair = `${input.length}:${input}|${f(record.output)}`;
    // A blank system is left out of training, so it is left out of "the same" too.
    if (typeof record.system !== 'string' || isBlank(record.system)) return `io|${pair}`;
    const system = f(record.system);
    return `ios|${system.length}:${system}|${pair}`;
  }
  return `t|${f(record.text)}`;
}

/** 64-bit hash of the record's canonical form, as two unsigned 32-bit lanes. */
export function recordHash(record: DataRecord, normalized = false): [number, number] {
  return hash64(canonicalForm(record, normalized));
}

/** Hash of a line that is not a valid record (dedup keeps such lines unless repeated verbatim). */
export function lineHash(line: string, normalized = false): [number, number] {
  return hash64(`raw|${normalized ? normalizeText(line) : line}`);
}
