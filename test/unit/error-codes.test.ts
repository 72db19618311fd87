// The one list of error codes (ts/error-codes.ts) against the codes the Rust side can produce.
// TypeScript codes are checked by the compiler (ForgeError takes an ErrorCode); the Rust codes
// are string literals, so they are read from the sources here: every `"CODE"` literal in a core
// crate's error module or another file with a `fn code(` (its `code()` match arms), every
// `js_error("CODE", ...)` in the crates, and every code the hand-written native entry
// (crates/node/index.cjs) sets. A new code that is not listed fails this test, and so does a
// listed code that nothing produces any more.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, isErrorCode } from '../../ts/error-codes.js';
import { ROOT } from '../helpers/cli.js';

const CODE = '[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*';

function files(dir: string, keep: (file: string) => boolean): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) {
      if (name !== 'target' && name !== 'node_modules') out.push(...files(full, keep));
    } else if (keep(full)) out.push(full);
  }
  return out;
}

const crates = path.join(ROOT, 'crates');
const rustSources = files(crates, (f) => f.endsWith('.rs') && f.includes(`${path.sep}src${path.sep}`));

/** `code -> files that produce it`, from the Rust sources and the native entry. */
function rustCodes(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  const add = (code: string, file: string) => found.set(code, [...(found.get(code) ?? []), path.relative(ROOT, file)]);
  for (const file of rustSources) {
    const text = readFileSync(file, 'utf8');
    // Error modules (error.rs, or error/*.rs): the `code()` arms are `=> "CODE"`. Enums with a
    // `code()` elsewhere (infer's engine.rs: SESSION_CLOSED) have the same arms.
    if (/(^|[\\/])error(\.rs|[\\/])/.test(path.relative(crates, file)) || /\bfn code\(/.test(text)) {
      for (const m of text.matchAll(new RegExp(`=>\\s*"(${CODE})"`, 'g'))) add(m[1]!, file);
    }
    for (const m of text.matchAll(new RegExp(`js_error\\(\\s*"(${CODE})"`, 'g'))) add(m[1]!, file);
  }
  const entry = path.join(crates, 'node/index.cjs');
  const cjs = readFileSync(entry, 'utf8');
  for (const m of cjs.matchAll(new RegExp(`(?:code = |runtimeError\\()'(${CODE})'`, 'g'))) add(m[1]!, entry);
  for (const m of cjs.matchAll(new RegExp(`\\? '(${CODE})' : '(${CODE})'`, 'g'))) {
    add(m[1]!, entry);
    add(m[2]!, entry);
  }
  return found;
}

/** Quoted code literals anywhere in the TypeScript layer (ts/, cli/). */
function tsLiterals(): Set<string> {
  const out = new Set<string>();
  const sources = [...files(path.join(ROOT, 'ts'), (f) => f.endsWith('.ts')), ...files(path.join(ROOT, 'cli'), (f) => f.endsWith('.ts'))];
  for (const file of sources) {
    if (file.endsWith('error-codes.ts')) continue;
    for (const m of readFileSync(file, 'utf8').matchAll(new RegExp(`'(${CODE})'`, 'g'))) out.add(m[1]!);
  }
  return out;
}

describe('error codes', () => {
  const rust = rustCodes();

  it('the scan sees the Rust side (a broken pattern must not pass silently)', () => {
    for (const code of ['MODEL_NOT_FOUND', 'TOKENIZER_LOAD', 'ORT_LIBRARY_NOT_FOUND', 'CHECKPOINT_CORRUPT', 'PANIC', 'NATIVE_ERROR']) {
      expect(rust.has(code), code).toBe(true);
    }
    expect(rust.size).toBeGreaterThan(30);
  });

  it('lists every code the Rust crates and the native entry can produce', () => {
    const missing = [...rust].filter(([code]) => !isErrorCode(code)).map(([code, where]) => `${code} (${[...new Set(where)].join(', ')})`);
    expect(missing, 'add these to ts/error-codes.ts (or reuse a listed code)').toEqual([]);
  });

  it('lists no code that nothing produces', () => {
    const ts = tsLiterals();
    const stale = Object.keys(ERROR_CODES).filter((code) => !rust.has(code) && !ts.has(code));
    expect(stale, 'remove these from ts/error-codes.ts').toEqual([]);
  });

  it('keeps the folded duplicates out', () => {
    const folded = [
      'CANCELLED',
      'FILE_NOT_FOUND',
      'SOURCE_NOT_FOUND',
      'BASE_NOT_FOUND',
      'GDOCS_NOT_FOUND',
      'ONNX_MODEL_NOT_FOUND',
      'USAGE',
    ];
    folded.push('INVALID_OPTION', 'INVALID_INPUT', 'ONNX_SPEC_INVALID', 'TOKENIZER_LOAD_FAILED', 'TOKENIZER', 'MODEL_WRITE', 'ONNX_WRITE');
    for (const code of folded) expect(isErrorCode(code), code).toBe(false);
  });
});
