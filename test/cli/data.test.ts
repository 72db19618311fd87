// `foremforge data ...` as a user runs it: exit codes, printed problems with file:line, --json.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const SAMPLE = path.join(ROOT, 'examples/sample_qna.jsonl');
// Counted from the file so growing the sample set does not break these tests.
const N = readFileSync(SAMPLE, 'utf8')
  .split('\n')
  .filter((l) => l.trim()).length;

function badFile(): string {
  const file = path.join(tempDir(), 'bad.jsonl');
  writeFileSync(
    file,
    `${[
      JSON.stringify({ input: 'q', output: 'a' }),
      '{oops',
      JSON.stringify({ input: 'q2', output: '' }),
      JSON.stringify({ messages: [{ role: 'narrator', content: 'x' }] }),
      JSON.stringify({ input: 'q', output: 'a' }),
    ].join('\n')}\n`
  );
  return file;
}

describe('foremforge data validate', () => {
  it('exits 0 on the sample set', async () => {
    const r = await runCli(['data', 'validate', SAMPLE]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`${N} records .*${N} valid`));
    expect(r.stdout).toContain('usable');
  });

  it('prints every problem with file:line and field, and exits 2', async () => {
    const file = badFile();
    const r = await runCli(['data', 'validate', file]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`${file}:2: not valid JSON`);
    expect(r.stdout).toContain(`${file}:3: output: "output" is empty [EMPTY]`);
    expect(r.stdout).toContain(`${file}:4: messages[0].role: unknown role "narrator"`);
    expect(r.stdout).toContain(`${file}:5: same record as line 1 [DUPLICATE, warning]`);
    expect(r.stdout).toContain('NOT usable');
  });

  it('--json gives the summary and problems for machines', async () => {
    const r = await runCli(['data', 'validate', badFile(), '--json']);
    expect(r.code).toBe(2);
    const out = JSON.parse(r.stdout);
    expect(out.summary).toMatchObject({ records: 5, valid: 2, usable: false, duplicates: 1 });
    expect(out.problems.map((p: { line: number; code: string }) => `${p.line}:${p.code}`)).toEqual([
      '2:BAD_JSON',
      '3:EMPTY',
      '4:UNKNOWN_ROLE',
      '5:DUPLICATE',
    ]);
  });

  it('warnings alone exit 0, or 2 with --strict', async () => {
    const file = path.join(tempDir(), 'dups.jsonl');
    writeFileSync(file, `${JSON.stringify({ input: 'q', output: 'a' })}\n`.repeat(2));
    expect((await runCli(['data', 'validate', file])).code).toBe(0);
    expect((await runCli(['data', 'validate', file, '--strict'])).code).toBe(2);
  });

  it('bad usage is coded and exits 2', async () => {
    const r = await runCli(['data', 'validate', SAMPLE, '--max-tokens', '100']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error[INVALID_ARGUMENT]');
    expect((await runCli(['data', 'validate', SAMPLE, '--max-chars', 'lots'])).code).toBe(2);
    const missing = await runCli(['data', 'validate', '/nonexistent.jsonl']);
    expect(missing.stderr).toContain('error[NOT_FOUND]');
    expect(missing.code).not.toBe(0);
  });
});

describe('foremforge data stats / split / dedup', () => {
  it('stats --json counts the sample set', async () => {
    const r = await runCli(['data', 'stats', SAMPLE, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s).toMatchObject({ records: N, invalid: 0, byKind: { pair: N, chat: 0, text: 0 } });
    expect(s.chars.count).toBe(N);
    const text = await runCli(['data', 'stats', SAMPLE]);
    expect(text.stdout).toMatch(/chars\s+total \d+/);
  });

  it('split writes a deterministic partition', async () => {
    const dir = tempDir();
    const args = (tag: string) => [
      'data',
      'split',
      SAMPLE,
      '--eval-fraction',
      '0.2',
      '--seed',
      '3',
      '--train-out',
      path.join(dir, `${tag}.train.jsonl`),
      '--eval-out',
      path.join(dir, `${tag}.eval.jsonl`),
      '--json',
    ];
    const a = await runCli(args('a'));
    expect(a.code, a.stderr).toBe(0);
    expect(JSON.parse(a.stdout)).toMatchObject({ records: N, train: N - Math.round(N * 0.2), eval: Math.round(N * 0.2), seed: 3 });
    await runCli(args('b'));
    expect(readFileSync(path.join(dir, 'a.eval.jsonl'), 'utf8')).toBe(readFileSync(path.join(dir, 'b.eval.jsonl'), 'utf8'));
    const lines = (f: string) => readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean);
    expect([...lines('a.train.jsonl'), ...lines('a.eval.jsonl')].sort()).toEqual(
      readFileSync(SAMPLE, 'utf8').split('\n').filter(Boolean).sort()
    );
    expect((await runCli(['data', 'split', SAMPLE, '--eval-fraction', '2'])).code).toBe(2);
  });

  it('split defaults come from tinyforge.config.json', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'tinyforge.config.json'), JSON.stringify({ evalSplit: 0.5, seed: 9 }));
    const data = path.join(dir, 'd.jsonl');
    writeFileSync(data, readFileSync(SAMPLE));
    const r = await runCli(['data', 'split', 'd.jsonl', '--json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ eval: Math.round(N * 0.5), seed: 9, evalOut: 'd.eval.jsonl' });
    expect(existsSync(path.join(dir, 'd.train.jsonl'))).toBe(true);
  });

  it('dedup removes exact and normalized duplicates', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'd.jsonl');
    writeFileSync(
      file,
      [
        { input: 'Hi there!', output: 'Hello.' },
        { input: 'Hi there!', output: 'Hello.' },
        { input: 'hi   there', output: 'hello' },
      ]
        .map((r) => JSON.stringify(r))
        .join('\n')
    );
    const exact = await runCli(['data', 'dedup', file, '--out', path.join(dir, 'e.jsonl'), '--json']);
    expect(exact.code, exact.stderr).toBe(0);
    expect(JSON.parse(exact.stdout)).toMatchObject({ records: 3, kept: 2, removed: 1, mode: 'exact' });
    const norm = await runCli(['data', 'dedup', file, '--out', path.join(dir, 'n.jsonl'), '--normalized']);
    expect(norm.stdout).toContain('1 kept, 2 normalized duplicates removed');
    expect(readFileSync(path.join(dir, 'n.jsonl'), 'utf8')).toBe(`${JSON.stringify({ input: 'Hi there!', output: 'Hello.' })}\n`);
  });
});
