// `foremforge data augment` end to end on a tiny random model: every original kept in order, each
// followed by its kept rewordings (same answer, `_augmented_from` naming the line), the report's
// counts adding up, the same seed giving the same file, --statements adding {"text"} records, and
// bad input (missing file, empty file, a bad line, no question/answer records) failing with a
// coded error before any model is loaded.
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTinyModel } from '@tinyforge/native';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

const QA = Array.from({ length: 5 }, (_, i) => ({ input: `Which code does item ${i} have?`, output: `Item ${i} has code ${100 + i}.` }));
const jsonl = (rows: object[]): string => `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`;

let fx: { dir: string; base: string; data: string };

beforeAll(async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tinyforge-augment-'));
  const base = path.join(dir, 'base');
  await createTinyModel(base, { seed: 3 });
  const data = path.join(dir, 'qa.jsonl');
  writeFileSync(data, jsonl(QA));
  fx = { dir, base, data };
}, 120_000);

interface Report {
  records: number;
  augmented: number;
  generated: number;
  kept: number;
  statements: number;
  dropped: Record<string, number>;
  written: number;
}

describe('foremforge data augment', () => {
  it('keeps every original, adds filtered rewordings, reports and reproduces', async () => {
    const out = path.join(fx.dir, 'aug.jsonl');
    const args = ['data', 'augment', '--in', fx.data, '--out', out, '--base', fx.base, '--paraphrases', '2', '--seed', '7', '--json'];
    const r = await runCli(args);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.records).toBe(5);
    expect(report.augmented).toBe(5);
    expect(report.generated).toBeGreaterThanOrEqual(10);
    const dropped = Object.values(report.dropped).reduce((a, b) => a + b, 0);
    expect(report.kept + dropped).toBe(report.generated);
    const rows = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.length).toBe(report.written);
    expect(rows.length).toBe(5 + report.kept);
    expect(rows.filter((x) => x._augmented_from === undefined)).toEqual(QA);
    for (const row of rows.filter((x) => x._augmented_from !== undefined)) {
      const from = QA[(row._augmented_from as number) - 1]!;
      expect(row.output).toBe(from.output);
      expect(row.input).not.toBe(from.input);
    }
    expect(readdirSync(fx.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    const again = path.join(fx.dir, 'aug2.jsonl');
    const r2 = await runCli([...args.slice(0, 5), again, ...args.slice(6)]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(readFileSync(again, 'utf8')).toBe(readFileSync(out, 'utf8'));
  }, 120_000);

  it('--statements adds each answer as a text record', async () => {
    const out = path.join(fx.dir, 'st.jsonl');
    const r = await runCli([
      'data',
      'augment',
      '--in',
      fx.data,
      '--out',
      out,
      '--base',
      fx.base,
      '--paraphrases',
      '0',
      '--statements',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const rows = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.filter((x) => 'text' in x).map((x) => x.text)).toEqual(QA.map((q) => q.output));
    expect((JSON.parse(r.stdout) as Report).statements).toBe(5);
  }, 60_000);

  it('bad input: coded errors naming what and where', async () => {
    const out = path.join(fx.dir, 'never.jsonl');
    const missing = await runCli([
      'data',
      'augment',
      '--in',
      path.join(fx.dir, 'nope.jsonl'),
      '--out',
      out,
      '--base',
      path.join(fx.dir, 'no-model'),
    ]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('NOT_FOUND');

    const empty = path.join(fx.dir, 'empty.jsonl');
    writeFileSync(empty, '\n');
    const e = await runCli(['data', 'augment', '--in', empty, '--out', out, '--base', path.join(fx.dir, 'no-model')]);
    expect(e.stderr).toContain('INVALID_DATA');
    expect(e.stderr).toContain('no records');

    const bad = path.join(fx.dir, 'bad.jsonl');
    writeFileSync(bad, `${JSON.stringify(QA[0])}\n{"input": "q"}\n`);
    const b = await runCli(['data', 'augment', '--in', bad, '--out', out, '--base', path.join(fx.dir, 'no-model')]);
    expect(b.stderr).toContain('INVALID_DATA');
    expect(b.stderr).toContain(`${bad}:2:`);

    const text = path.join(fx.dir, 'text.jsonl');
    writeFileSync(text, jsonl([{ text: 'just prose' }]));
    const t = await runCli(['data', 'augment', '--in', text, '--out', out, '--base', path.join(fx.dir, 'no-model')]);
    expect(t.stderr).toContain('no question/answer records');

    const same = await runCli(['data', 'augment', '--in', fx.data, '--out', fx.data, '--base', fx.base]);
    expect(same.stderr).toContain('INVALID_ARGUMENT');
  }, 60_000);
});
