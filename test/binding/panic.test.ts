// A Rust panic reaches JS as an error with `code: 'PANIC'`, never an abort of Node: through the
// guard of a sync export (JS thread) and of a Task::compute (libuv thread). `__testPanic` is a
// test-only export of the native core (crates/node/src/error.rs) that panics on purpose.
import native from '@tinyforge/native';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../helpers/errors.js';

const testPanic = (native as unknown as { __testPanic: (asynchronous: boolean) => number | Promise<number> }).__testPanic;

describe('panic guard', () => {
  it('turns a panic in a sync export into a thrown PANIC error', () => {
    expect(codeOf(() => testPanic(false))).toBe('PANIC');
    expect(() => testPanic(false)).toThrow(/deliberate panic \(sync\)/);
  });

  it('turns a panic in Task::compute into a PANIC rejection, and the process lives on', async () => {
    const pending = testPanic(true);
    expect(pending).toBeInstanceOf(Promise);
    expect(await codeOf(pending as Promise<number>)).toBe('PANIC');
    await expect(testPanic(true)).rejects.toThrow(/deliberate panic \(async\)/);
    // Still usable after two caught panics.
    expect(typeof native.nativeVersion()).toBe('string');
  });
});
