// `foremforge models list|show|rm` against a real registry in a temp TINYFORGE_HOME.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Registry } from '../../ts/registry/index.js';
import { CLI, runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

async function seeded(): Promise<{ home: string; runId: string; exportId: string; runDir: string; exportDir: string }> {
  const home = path.join(tempDir(), 'home');
  const runDir = path.join(tempDir(), 'run');
  mkdirSync(path.join(runDir, 'adapter'), { recursive: true });
  writeFileSync(path.join(runDir, 'adapter/adapter_model.safetensors'), Buffer.alloc(2048));
  const exportDir = path.join(tempDir(), 'svc');
  mkdirSync(exportDir);
  writeFileSync(path.join(exportDir, 'model.onnx'), Buffer.alloc(4096));
  const r = Registry.open({ home });
  try {
    const run = await r.registerRun({
      path: runDir,
      name: 'tallyfin',
      baseModel: { name: 'smollm2-135m-instruct', sha256: 'a'.repeat(64) },
      dataset: { path: '/data/sample_qna.jsonl', sha256: 'd'.repeat(64), records: 46 },
      hyperparameters: { epochs: 3 },
      metrics: { evalLoss: 1.5 },
    });
    await new Promise((res) => setTimeout(res, 5));
    const exp = await r.registerExport({ path: exportDir, parentId: run.id });
    return { home, runId: run.id, exportId: exp.id, runDir, exportDir };
  } finally {
    r.close();
  }
}

describe('foremforge models', () => {
  it('list prints a table, and --json the rows', async () => {
    const s = await seeded();
    const env = { TINYFORGE_HOME: s.home };
    const text = await runCli(['models', 'list'], { env });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^ID\s+KIND\s+NAME\s+SIZE/);
    expect(text.stdout).toContain(s.runId);
    expect(text.stdout).toContain('2.0 KB');
    const json = await runCli(['models', 'list', '--json'], { env });
    expect(JSON.parse(json.stdout).map((a: { id: string }) => a.id)).toEqual([s.exportId, s.runId]);
    const runs = await runCli(['models', 'list', '--kind', 'run', '--json'], { env });
    expect(JSON.parse(runs.stdout)).toHaveLength(1);
    expect((await runCli(['models', 'list', '--kind', 'nope'], { env })).code).toBe(2);
  });

  it('show prints lineage by id prefix or name; unknown ids are coded', async () => {
    const s = await seeded();
    const env = { TINYFORGE_HOME: s.home };
    const text = await runCli(['models', 'show', 'tallyfin'], { env });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('smollm2-135m-instruct');
    expect(text.stdout).toContain('(46 records)');
    expect(text.stdout).toContain('adapter/adapter_model.safetensors');
    const json = await runCli(['models', 'show', s.exportId.slice(0, 8), '--json'], { env });
    expect(JSON.parse(json.stdout)).toMatchObject({ id: s.exportId, parentId: s.runId, kind: 'export' });
    const missing = await runCli(['models', 'show', 'zzz-nothing'], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('error[NOT_FOUND]');
    expect(missing.stderr).toContain('hint:');
  });

  it('rm without a terminal and without --yes refuses with a coded error and exit 2', async () => {
    const s = await seeded();
    const r = await runCli(['models', 'rm', s.runId], { env: { TINYFORGE_HOME: s.home } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error[CONFIRMATION_REQUIRED]');
    expect(existsSync(s.runDir)).toBe(true);
  });

  it('rm --yes removes the row and deletes the files; --keep-files keeps them', async () => {
    const s = await seeded();
    const env = { TINYFORGE_HOME: s.home };
    const r = await runCli(['models', 'rm', s.runId, '--yes', '--json'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ removed: s.runId, deletedFiles: true });
    expect(existsSync(s.runDir)).toBe(false);
    const keep = await runCli(['models', 'rm', s.exportId, '--yes', '--keep-files'], { env });
    expect(keep.code, keep.stderr).toBe(0);
    expect(existsSync(s.exportDir)).toBe(true);
    expect(JSON.parse((await runCli(['models', 'list', '--json'], { env })).stdout)).toEqual([]);
  });

  it('rm asks on a terminal: "n" keeps everything, "y" deletes', async () => {
    const s = await seeded();
    // util-linux `script` gives the CLI a pseudo-terminal, so it prompts like it would for a user.
    const onTty = (answer: string) =>
      spawnSync('script', ['-qec', `${process.execPath} ${CLI} models rm ${s.runId}`, '/dev/null'], {
        input: `${answer}\n`,
        env: { ...process.env, TINYFORGE_HOME: s.home },
        encoding: 'utf8',
      });
    const no = onTty('n');
    expect(no.stdout).toContain('[y/N]');
    expect(no.stdout).toContain('ABORTED');
    expect(existsSync(s.runDir)).toBe(true);
    const yes = onTty('y');
    expect(yes.stdout).toContain(`removed ${s.runId}`);
    expect(existsSync(s.runDir)).toBe(false);
  });
});
