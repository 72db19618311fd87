// `foremforge train --dry-run` reports a data set's problems as `foremforge data validate` does:
// the records the trainer rejects (its Rust checker) and the data's warnings (the dataset checker),
// each as `file:line: field: reason [CODE]`. The two checkers share their rules through
// test/fixtures/records/schema-cases.json; here the printed lines of both commands must agree.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createTinyModel } from '@tinyforge/native';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const RECORDS: object[] = [
  { input: 'Which code has item 1?', output: 'Item 1 has code 103.' }, // 1 ok
  { input: 'Which code has item 1?', output: 'Item 1 has code 103.' }, // 2 DUPLICATE (warning)
  { input: 'Which code has item 3?', output: 'Item 3 has code 109.', score: 0.9 }, // 3 UNKNOWN_FIELD (warning)
  { system: ' ', input: 'Which code has item 4?', output: 'Item 4 has code 112.' }, // 4 EMPTY system (warning)
  { input: 'Which code has item 5?' }, // 5 MISSING_FIELD output
  { messages: [{ role: 'user', content: 'Hello?' }] }, // 6 NO_ASSISTANT
  { input: 'q', output: 'a', text: 't' }, // 7 AMBIGUOUS_SCHEMA
  {
    messages: [
      { role: 'user', content: '' },
      { role: 'assistant', content: 'Hi.' },
    ],
  }, // 8 EMPTY content (warning) + MIXED_SCHEMA (warning)
  {
    messages: [
      { role: 'user', content: 'Hi' },
      { role: 'Assistant', content: 'Hi.' },
    ],
  }, // 9 UNKNOWN_ROLE
];

const problemLines = (stdout: string, file: string) =>
  stdout.split('\n').filter((l) => /^:\d+:/.test(l.slice(file.length)) && l.startsWith(file));

describe('foremforge train --dry-run', () => {
  it('prints the same problem lines as data validate', async () => {
    const dir = tempDir();
    const base = path.join(dir, 'base');
    await createTinyModel(base, { seed: 5 });
    const data = path.join(dir, 'data.jsonl');
    writeFileSync(data, `${RECORDS.map((r) => JSON.stringify(r)).join('\n')}\n`);

    const validate = await runCli(['data', 'validate', data]);
    expect(validate.code).toBe(2);
    const dry = await runCli(['train', '--data', data, '--out', path.join(dir, 'run'), '--base', base, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(2);
    expect(dry.stdout).toMatch(/records: 9 \(valid 5, invalid 4/);

    // In file order; line 8 has two warnings, its own and the file-level one.
    const expected = problemLines(validate.stdout, data);
    expect(expected.map((l) => /\[([A-Z_]+)/.exec(l)?.[1])).toEqual([
      'DUPLICATE',
      'UNKNOWN_FIELD',
      'EMPTY',
      'MISSING_FIELD',
      'NO_ASSISTANT',
      'AMBIGUOUS_SCHEMA',
      'EMPTY',
      'MIXED_SCHEMA',
      'UNKNOWN_ROLE',
    ]);
    expect(problemLines(dry.stdout, data)).toEqual(expected);

    const json = await runCli(['train', '--data', data, '--out', path.join(dir, 'run'), '--base', base, '--dry-run', '--json']);
    const result = JSON.parse(json.stdout) as {
      issues: { line: number }[];
      warnings: { file: string; line: number; code: string }[];
      warningCount: number;
    };
    expect(result.issues.map((i) => i.line)).toEqual([5, 6, 7, 9]);
    expect(result.warnings.map((w) => `${w.line}:${w.code}`)).toEqual([
      '2:DUPLICATE',
      '3:UNKNOWN_FIELD',
      '4:EMPTY',
      '8:EMPTY',
      '8:MIXED_SCHEMA',
    ]);
    expect(result.warningCount).toBe(5);
  });
});
