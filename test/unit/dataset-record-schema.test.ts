// The TypeScript checker against the shared record-schema fixture, which `cargo test -p
// tinyforge-train --test record_schema` also runs against the Rust checker: a rule that drifts on
// one side fails one of the two. The cases and the rules they pin: ts/dataset/README.md.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkLine, recordMessages, validateFile } from '../../ts/dataset/index.js';
import { type CheckedLines, HAS_RECORD, KIND_BY_CODE, checkLines } from '../../ts/dataset/check-lines.js';

interface Case {
  name: string;
  record?: unknown;
  raw?: string;
  expect: { kind: string | null; valid: boolean; problems: { code: string; field: string; severity: string }[]; messages?: unknown };
}

const FIXTURE = path.join(import.meta.dirname, '../fixtures/records/schema-cases.json');
const FILE_LEVEL = path.join(import.meta.dirname, '../fixtures/records/file-level.jsonl');
const { cases } = JSON.parse(readFileSync(FIXTURE, 'utf8')) as { cases: Case[] };
const lineOf = (c: Case) => c.raw ?? JSON.stringify(c.record);

describe('record schema fixture', () => {
  it('has the cases both implementations run', () => {
    expect(cases.length).toBeGreaterThanOrEqual(50);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const checked = checkLine(lineOf(c), 1);
    const got: Case['expect'] = {
      kind: checked.kind ?? null,
      valid: checked.record !== undefined,
      problems: checked.problems.map(({ code, field, severity }) => ({ code, field, severity })),
    };
    if (c.expect.messages !== undefined) got.messages = checked.record ? recordMessages(checked.record) : null;
    expect(got).toEqual(c.expect);
    for (const p of checked.problems) expect(p.line).toBe(1);
  });

  it('the validator path (checkLines) gives the same kind, verdict and problems', () => {
    const lines = cases.map(lineOf);
    const r: CheckedLines = checkLines(lines, 1, { maxChars: Number.MAX_SAFE_INTEGER, hashes: true });
    cases.forEach((c, i) => {
      const flags = r.flags[i]!;
      expect({ kind: KIND_BY_CODE[flags & 0x0f] ?? null, valid: (flags & HAS_RECORD) !== 0 }, c.name).toEqual({
        kind: c.expect.kind,
        valid: c.expect.valid,
      });
      const problems = r.problems.filter((p) => p.line === i + 1).map(({ code, field, severity }) => ({ code, field, severity }));
      expect(problems, c.name).toEqual(c.expect.problems);
    });
  });
});

// The same file crates/train/tests/record_schema.rs loads: BOM + CRLF, two blank lines (spaces and
// U+00A0), a byte that is not UTF-8 (U+FFFD on both sides) and no final newline.
describe('file-level rules (shared with the trainer)', () => {
  it('reads file-level.jsonl as three valid records', async () => {
    const { summary, problems } = await validateFile(FILE_LEVEL);
    expect(problems).toEqual([]);
    expect(summary).toMatchObject({ lines: 5, blankLines: 2, records: 3, valid: 3 });
    const line4 = readFileSync(FILE_LEVEL, 'utf8').split('\n')[3]!;
    expect(JSON.parse(line4)).toEqual({ input: 'q2', output: 'a\ufffd2' });
  });
});
