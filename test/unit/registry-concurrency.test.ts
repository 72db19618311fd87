// Two processes registering at once into a fresh registry (both also race to create and migrate
// it): WAL + busy_timeout + IMMEDIATE transactions must lose nothing. Uses the built registry
// (dist/), as the CLI does.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Registry } from '../../ts/registry/index.js';
import { ROOT } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const ROWS = 200;

function writer(home: string, tag: string): Promise<{ code: number; stderr: string }> {
  const registryUrl = pathToFileURL(path.join(ROOT, 'dist/ts/registry/index.js')).href;
  const script = `
    const { Registry } = await import(${JSON.stringify(registryUrl)});
    const r = Registry.open({ home: ${JSON.stringify(home)} });
    for (let i = 0; i < ${ROWS}; i++) {
      await r.registerRun({ path: '/runs/${tag}-' + i, metrics: { i }, files: [{ path: 'a', size: i }] });
    }
    r.close();
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stderr }));
  });
}

describe('registry under concurrent writers', () => {
  it(`two processes writing ${ROWS} rows each lose nothing`, async () => {
    const home = path.join(tempDir(), 'home');
    const results = await Promise.all([writer(home, 'a'), writer(home, 'b')]);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const registry = Registry.open({ home });
    try {
      const runs = registry.list('run');
      expect(runs).toHaveLength(2 * ROWS);
      expect(new Set(runs.map((r) => r.id)).size).toBe(2 * ROWS);
      for (const tag of ['a', 'b']) {
        const mine = runs.filter((r) => r.path.startsWith(`/runs/${tag}-`));
        expect(mine.map((r) => r.metrics.i).sort((x, y) => Number(x) - Number(y))).toEqual(Array.from({ length: ROWS }, (_, i) => i));
      }
      expect(registry.db.prepare('SELECT COUNT(*) AS n FROM artifact_files').get()).toEqual({ n: 2 * ROWS });
      expect(registry.db.prepare('SELECT COUNT(*) AS n FROM schema_migrations').get()).toEqual({ n: 1 });
    } finally {
      registry.close();
    }
  });
});
