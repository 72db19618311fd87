// `foremforge eval` end to end on a tiny random model and a LoRA run trained on it: the printed
// table (one column per model with --compare; an export of the run answers through ONNX Runtime,
// checked against the InferenceSession), the report JSONL (one line per record and model,
// scores recomputed from the answers it holds, a summary per model), --json, and bad input (an
// eval record without its fields, a model that does not exist, an empty file, a bad flag): each a
// coded error with the exit code scripts rely on.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InferenceSession, createTinyModel } from '@tinyforge/native';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEvalCases } from '../../ts/pipeline/eval-data.js';
import { scoreAnswer } from '../../ts/pipeline/eval-metrics.js';
import { exportModel } from '../../ts/pipeline/export.js';
import { runCli } from '../helpers/cli.js';

const QA = Array.from({ length: 8 }, (_, i) => ({ input: `Which code has item ${i}?`, output: `Item ${i} has code ${100 + i * 3}.` }));
const EVAL = QA.slice(0, 4).map((r, i) => ({ input: `What is the code of item ${i}?`, output: r.output, _key: String(100 + i * 3) }));

let fx: { dir: string; base: string; run: string; data: string };

const jsonl = (rows: object[]): string => `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`;

beforeAll(async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tinyforge-eval-'));
  const base = path.join(dir, 'base');
  await createTinyModel(base, { seed: 5 });
  const train = path.join(dir, 'train.jsonl');
  writeFileSync(train, jsonl(QA));
  const data = path.join(dir, 'eval.jsonl');
  writeFileSync(data, jsonl(EVAL));
  const run = path.join(dir, 'run');
  const r = await runCli(
    [
      'train',
      '--data',
      train,
      '--out',
      run,
      '--base',
      base,
      '--max-steps',
      '40',
      '--lr',
      '2e-2',
      '--eval-split',
      '0',
      '--lora-dropout',
      '0',
    ],
    { env: { TINYFORGE_HOME: path.join(dir, 'home') } }
  );
  expect(r.code, r.stderr).toBe(0);
  fx = { dir, base, run, data };
}, 300_000);

afterAll(() => {
  if (fx) rmSync(fx.dir, { recursive: true, force: true });
});

interface ReportLine {
  model?: string;
  line?: number;
  reference?: string;
  key?: string;
  answer?: string;
  scores?: { exactMatch: number; contains: number; f1: number; factRecall?: number };
  summary?: { model: string; records: number; keyed: number; recalled: number; factRecall: number; f1: number };
}

describe('readEvalCases', () => {
  it('asks a pair after its system prompt and a chat up to its last assistant turn', async () => {
    const file = path.join(fx.dir, 'kinds.jsonl');
    const chat = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello.' },
      { role: 'user', content: 'Price?' },
      { role: 'assistant', content: '$189.' },
    ];
    writeFileSync(file, `${jsonl([{ system: 'Be brief.', input: 'Q?', output: 'A.', key: 'A' }, { messages: chat }])}\n\n`);
    const cases = await readEvalCases(file);
    expect(cases).toEqual([
      {
        line: 1,
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Q?' },
        ],
        reference: 'A.',
        key: 'A',
      },
      { line: 2, messages: chat.slice(0, 3), reference: '$189.' },
    ]);
  });
});

describe('foremforge eval', () => {
  it('scores a run against its base side by side and writes the per-record report', async () => {
    const out = path.join(fx.dir, 'report.jsonl');
    const r = await runCli(['eval', '--model', fx.run, '--compare', fx.base, '--data', fx.data, '--out', out, '--max-tokens', '12']);
    expect(r.code, r.stderr).toBe(0);
    const header = r.stdout.split('\n')[0]!;
    expect(header.trim().split(/\s+/)).toEqual(['run', 'base']);
    expect(r.stdout).toMatch(/^fact recall\s+\S+%.*\s+\S+%/m);
    expect(r.stdout).toMatch(/^token F1 /m);

    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as ReportLine);
    const rows = lines.filter((l) => l.summary === undefined);
    expect(rows).toHaveLength(2 * EVAL.length);
    expect(rows.map((l) => l.line)).toEqual([1, 2, 3, 4, 1, 2, 3, 4]);
    for (const row of rows) {
      // The report's scores are those of the answer it records.
      expect(row.scores).toEqual(scoreAnswer(row.answer!, row.reference!, row.key));
      expect(typeof row.answer).toBe('string');
    }
    const summaries = lines.flatMap((l) => (l.summary ? [l.summary] : []));
    expect(summaries.map((s) => s.model)).toEqual([fx.run, fx.base]);
    for (const s of summaries) {
      expect(s.records).toBe(EVAL.length);
      expect(s.keyed).toBe(EVAL.length);
      const mine = rows.filter((l) => l.model === s.model);
      expect(s.recalled).toBe(mine.filter((l) => l.scores!.factRecall === 1).length);
      expect(s.f1).toBeCloseTo(mine.reduce((t, l) => t + l.scores!.f1, 0) / mine.length, 12);
    }
    // The write was atomic: no temp file left beside the report.
    expect(readdirSync(fx.dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  }, 300_000);

  it('answers an export folder through ONNX Runtime and compares it with its run', async () => {
    const exported = path.join(fx.dir, 'exp');
    await exportModel({ model: fx.run, out: exported, home: path.join(fx.dir, 'home') });
    const out = path.join(fx.dir, 'report-export.jsonl');
    const r = await runCli(['eval', '--model', fx.run, '--compare', exported, '--data', fx.data, '--out', out, '--max-tokens', '12']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]!.trim().split(/\s+/)).toEqual(['run', 'exp']);
    expect(r.stdout).toMatch(/^token F1\s+\S+%\s+\S+%$/m);
    expect(r.stdout).toMatch(/^mean confidence\s+0\.\d{3}\s+0\.\d{3}$/m);

    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as ReportLine & { confidence?: number });
    const fromExport = lines.filter((l) => l.summary === undefined && l.model === exported);
    expect(fromExport).toHaveLength(EVAL.length);
    expect(lines.find((l) => l.summary?.model === exported)?.summary).toMatchObject({ kind: 'export', records: EVAL.length });
    // The export's answers are those of the ORT session itself, greedy with the same token cap.
    const session = await InferenceSession.load(exported);
    try {
      const cases = await readEvalCases(fx.data);
      for (const [i, c] of cases.entries()) {
        const direct = await session.generate(c.messages, { maxTokens: 12, temperature: 0, chatTemplate: true });
        expect(direct.usage.completionTokens).toBeGreaterThan(0);
        expect(fromExport[i]!.answer).toBe(direct.text);
        expect(fromExport[i]!.confidence).toBeCloseTo(direct.confidence, 6);
      }
    } finally {
      session.close();
    }
  }, 300_000);

  it('prints JSON summaries with --json, deterministically (greedy)', async () => {
    const a = await runCli(['eval', '--model', fx.run, '--data', fx.data, '--max-tokens', '8', '--json']);
    const b = await runCli(['eval', '--model', fx.run, '--data', fx.data, '--max-tokens', '8', '--json']);
    expect(a.code, a.stderr).toBe(0);
    const [sa] = JSON.parse(a.stdout) as { kind: string; records: number; f1: number; meanConfidence: number }[];
    const [sb] = JSON.parse(b.stdout) as { f1: number; meanConfidence: number }[];
    expect(sa!.kind).toBe('run');
    expect(sa!.records).toBe(EVAL.length);
    expect(sa!.meanConfidence).toBeGreaterThan(0);
    expect(sa!.meanConfidence).toBeLessThanOrEqual(1);
    expect(sb!.f1).toBe(sa!.f1);
    expect(sb!.meanConfidence).toBe(sa!.meanConfidence);
  }, 300_000);

  it('names the line and field of an eval record without its fields (exit 2)', async () => {
    const bad = path.join(fx.dir, 'bad.jsonl');
    writeFileSync(bad, jsonl([EVAL[0]!, { input: 'no answer here' }, { ...EVAL[1]!, _key: 7 }, { text: 'plain text' }]));
    const r = await runCli(['eval', '--model', fx.run, '--data', bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error\[INVALID_DATA\]/);
    expect(r.stderr).toContain(`${bad}:2: output:`);
    expect(r.stderr).toContain(`${bad}:3: _key:`);
    expect(r.stderr).toContain(`${bad}:4: record:`);
    expect(r.stderr).not.toContain(`${bad}:1:`);
  });

  it('refuses an empty eval file (exit 2)', async () => {
    const empty = path.join(fx.dir, 'empty.jsonl');
    writeFileSync(empty, '\n  \n');
    const r = await runCli(['eval', '--model', fx.run, '--data', empty]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error\[INVALID_DATA\]: .*no records/);
  });

  it('refuses a model that does not exist and a missing eval file (exit 1)', async () => {
    const noModel = await runCli(['eval', '--model', path.join(fx.dir, 'nope'), '--data', fx.data]);
    expect(noModel.code).toBe(1);
    expect(noModel.stderr).toMatch(/^error\[MODEL_NOT_FOUND\]: .*nope/);
    const notModel = await runCli(['eval', '--model', fx.dir, '--data', fx.data]);
    expect(notModel.code).toBe(1);
    expect(notModel.stderr).toMatch(/^error\[MODEL_NOT_FOUND\]: --model /);
    const noData = await runCli(['eval', '--model', fx.run, '--data', path.join(fx.dir, 'nope.jsonl')]);
    expect(noData.code).toBe(1);
    expect(noData.stderr).toMatch(/^error\[NOT_FOUND\]: .*nope\.jsonl/);
  });

  it('refuses a bad --max-tokens (exit 2)', async () => {
    const r = await runCli(['eval', '--model', fx.run, '--data', fx.data, '--max-tokens', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error\[INVALID_ARGUMENT\]: --max-tokens/);
  });
});
