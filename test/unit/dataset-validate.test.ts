// validateFile on real files: every problem comes back as data with its line, field and code;
// the summary says whether the set is usable; problemsToError aggregates into one INVALID_DATA.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertUsable, problemsToError, validateFile } from '../../ts/dataset/index.js';
import { tempDir } from '../helpers/tmp.js';

function jsonl(lines: (string | object)[]): string {
  const file = path.join(tempDir(), 'data.jsonl');
  writeFileSync(file, `${lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')}\n`);
  return file;
}

const pick = (ps: { line: number; field: string; code: string }[]) => ps.map(({ line, field, code }) => ({ line, field, code }));

describe('validateFile', () => {
  it('accepts a clean file of each kind and counts by kind', async () => {
    const cases = {
      pair: [
        { input: 'q1', output: 'a1' },
        { input: 'q2', output: 'a2', _source: 'b.csv:2' },
      ],
      chat: [
        {
          messages: [
            { role: 'system', content: 's' },
            { role: 'user', content: 'u1' },
            { role: 'assistant', content: 'a1' },
          ],
        },
        {
          messages: [
            { role: 'user', content: 'u2' },
            { role: 'assistant', content: 'a2' },
            { role: 'tool', content: 't' },
          ],
        },
      ],
      text: [{ text: 'first text' }, { text: 'second text', _source: { file: 'x.md', line: 3 } }],
    } as const;
    for (const [kind, records] of Object.entries(cases)) {
      const { summary, problems } = await validateFile(jsonl([...records]));
      expect(problems, kind).toEqual([]);
      expect(summary).toMatchObject({ records: 2, valid: 2, invalid: 0, kind, usable: true });
      expect(summary.byKind[kind as keyof typeof cases]).toBe(2);
    }
  });

  it('reports every problem with line, field and code', async () => {
    const file = jsonl([
      { input: 'q1', output: 'a1' }, // 1 ok
      '{"input": "q2", "output": ', // 2 bad JSON
      { input: 'q3' }, // 3 missing output
      { input: 'q4', output: '   ' }, // 4 empty output
      { input: 5, output: 'a5' }, // 5 wrong type
      {
        messages: [
          { role: 'robot', content: 'hi' },
          { role: 'assistant', content: '' },
        ],
      }, // 6 unknown role + empty content
      [1, 2], // 7 not an object
      { prompt: 'x', completion: 'y' }, // 8 unknown schema
      { input: 'q1', output: 'a1', _source: 'elsewhere' }, // 9 duplicate of 1 (warning)
      { text: 'a text record' }, // 10 mixed schema (warning: training takes mixed files)
      '', // 11 blank: ignored
      { input: 'q12', output: 'a12', text: 't' }, // 12 ambiguous
      { messages: [{ role: 'user', content: 'only a question' }] }, // 13 no assistant
      { messages: 'hello' }, // 14 wrong type
      { input: 'q15', output: 'a15', score: 3 }, // 15 unknown field (warning)
    ]);
    const { summary, problems } = await validateFile(file);
    expect(pick(problems)).toEqual([
      { line: 2, field: '', code: 'BAD_JSON' },
      { line: 3, field: 'output', code: 'MISSING_FIELD' },
      { line: 4, field: 'output', code: 'EMPTY' },
      { line: 5, field: 'input', code: 'WRONG_TYPE' },
      { line: 6, field: 'messages[0].role', code: 'UNKNOWN_ROLE' },
      { line: 6, field: 'messages[1].content', code: 'EMPTY' },
      { line: 7, field: '', code: 'NOT_AN_OBJECT' },
      { line: 8, field: '', code: 'UNKNOWN_SCHEMA' },
      { line: 9, field: '', code: 'DUPLICATE' },
      { line: 10, field: '', code: 'MIXED_SCHEMA' },
      { line: 12, field: '', code: 'AMBIGUOUS_SCHEMA' },
      { line: 13, field: 'messages', code: 'NO_ASSISTANT' },
      { line: 14, field: 'messages', code: 'WRONG_TYPE' },
      { line: 15, field: 'score', code: 'UNKNOWN_FIELD' },
    ]);
    expect(problems.find((p) => p.code === 'DUPLICATE')!.reason).toContain('line 1');
    expect(problems.filter((p) => p.severity === 'warning').map((p) => p.code)).toEqual(['DUPLICATE', 'MIXED_SCHEMA', 'UNKNOWN_FIELD']);
    expect(summary).toMatchObject({
      lines: 15,
      blankLines: 1,
      records: 14,
      valid: 4,
      invalid: 10,
      duplicates: 1,
      usable: false,
      kind: 'mixed',
    });
    expect(summary.errors).toBe(11);
    expect(summary.warnings).toBe(3);
  });

  it('flags over-long records by characters', async () => {
    const file = jsonl([
      { input: 'q', output: 'x'.repeat(100) },
      { input: 'q2', output: 'short' },
    ]);
    const { problems } = await validateFile(file, { maxChars: 50 });
    expect(pick(problems)).toEqual([{ line: 1, field: '', code: 'TOO_LONG' }]);
  });

  it('counts tokens with a tokenizer and flags records over maxTokens', async () => {
    // A whitespace tokenizer with a template: enough to check the plumbing; the real tokenizer is
    // exercised in dataset-tokens.test.ts.
    const tokenizer = {
      encode: (t: string) => t.split(/\s+/).filter(Boolean),
      applyChatTemplate: (ms: { role: string; content: string }[]) => ms.map((m) => `<${m.role}> ${m.content}`).join(' '),
    };
    const file = jsonl([
      { input: 'one two', output: 'three' },
      { input: 'a', output: 'b c d e f g' },
    ]);
    const { problems } = await validateFile(file, { tokenizer, maxTokens: 6 });
    expect(pick(problems)).toEqual([{ line: 2, field: '', code: 'TOO_LONG' }]);
    expect(problems[0]!.reason).toContain('9 tokens');
  });

  it('handles a BOM, CRLF line ends and a last line without newline', async () => {
    const file = path.join(tempDir(), 'crlf.jsonl');
    writeFileSync(file, '\ufeff{"input":"q","output":"a"}\r\n{"input":"q2","output":"a2"}');
    const { summary, problems } = await validateFile(file);
    expect(problems).toEqual([]);
    expect(summary.records).toBe(2);
  });

  it('keeps at most maxProblems but counts and streams them all', async () => {
    const file = jsonl(Array.from({ length: 50 }, () => 'nope'));
    const seen: number[] = [];
    const { summary, problems } = await validateFile(file, { maxProblems: 10, onProblem: (p) => seen.push(p.line) });
    expect(problems).toHaveLength(10);
    expect(seen).toHaveLength(50);
    expect(summary).toMatchObject({ errors: 50, truncated: true, problemCounts: { BAD_JSON: 50 } });
  });

  it('rejects a missing file with a code', async () => {
    await expect(validateFile('/nonexistent/data.jsonl')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('an empty file is not usable', async () => {
    const file = jsonl([]);
    const { summary } = await validateFile(file);
    expect(summary).toMatchObject({ records: 0, usable: false });
    await expect(assertUsable(file)).rejects.toMatchObject({ code: 'INVALID_DATA' });
  });
});

describe('problemsToError / assertUsable', () => {
  it('aggregates problems into one INVALID_DATA error with file:line', async () => {
    const file = jsonl(['bad', { input: 'q' }, ...Array.from({ length: 30 }, () => 'bad')]);
    const { problems } = await validateFile(file);
    const err = problemsToError(file, problems, { limit: 5 });
    expect(err.code).toBe('INVALID_DATA');
    expect(err.suggestion).toContain('data validate');
    expect(err.message).toContain(`${file}:1:`);
    expect(err.message).toContain(`${file}:2: output:`);
    expect(err.message).toContain('and 27 more');
    await expect(assertUsable(file)).rejects.toMatchObject({ code: 'INVALID_DATA' });
  });

  it('assertUsable returns the summary when only warnings exist', async () => {
    const file = jsonl([
      { input: 'q', output: 'a' },
      { input: 'q', output: 'a' },
    ]);
    await expect(assertUsable(file)).resolves.toMatchObject({ valid: 2, duplicates: 1, usable: true });
  });
});
