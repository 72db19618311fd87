import { describe, expect, it } from 'vitest';
import { numberFlag, numberOption, optionalNumberFlag } from '../../cli/flags.js';

const refused = (f: () => unknown, message: string) => expect(f).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message }));

describe('numeric command-line values', () => {
  it('accept what the rule allows, bounds included', () => {
    expect(numberFlag('--n', '1', { integer: true, min: 1, max: 4096 })).toBe(1);
    expect(numberFlag('--n', ' 4096 ', { integer: true, min: 1, max: 4096 })).toBe(4096);
    expect(numberFlag('--t', '0.7', { min: 0, max: 2 })).toBe(0.7);
    expect(numberFlag('--lr', '2e-3', { above: 0 })).toBe(0.002);
    expect(numberFlag('--x', '-3.5')).toBe(-3.5);
    expect(optionalNumberFlag('--n', undefined, { integer: true })).toBeUndefined();
    expect(numberOption('--f', { above: 0, below: 1 })('0.25')).toBe(0.25);
  });

  it('refuse the rest with a coded error naming the flag, the range and the value', () => {
    refused(
      () => numberFlag('--max-tokens', '0', { integer: true, min: 1, max: 4096 }),
      '--max-tokens must be an integer from 1 to 4096, got "0"'
    );
    refused(
      () => numberFlag('--max-tokens', '4097', { integer: true, min: 1, max: 4096 }),
      '--max-tokens must be an integer from 1 to 4096, got "4097"'
    );
    // Integers are digits only: no sign, fraction or exponent.
    for (const v of ['1.5', '-1', '1e3', '0x10', '', '  '])
      refused(() => numberFlag('--seed', v, { integer: true, min: 0 }), `--seed must be an integer >= 0, got "${v}"`);
    refused(() => numberFlag('--t', 'warm', { min: 0, max: 2 }), '--t must be a number from 0 to 2, got "warm"');
    refused(() => numberFlag('--lr', '0', { above: 0 }), '--lr must be a number > 0, got "0"');
    refused(() => numberOption('--eval-fraction', { above: 0, below: 1 })('1'), '--eval-fraction must be a number > 0 and < 1, got "1"');
    refused(() => numberFlag('--x', 'Infinity'), '--x must be a number, got "Infinity"');
  });
});
