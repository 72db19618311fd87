// A tiny random model exported the way `foremforge export` does it (int8), for the ORT engine tests.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTinyModel } from '@tinyforge/native';
import { exportModel } from '../../ts/pipeline/export.js';

export async function pipelineExport(): Promise<{ dir: string; cleanup: () => void }> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'tinyforge-ort-engine-'));
  const base = path.join(root, 'base');
  await createTinyModel(base, { seed: 5 });
  const dir = path.join(root, 'exp');
  await exportModel({ model: base, out: dir, home: path.join(root, 'home') });
  return { dir, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}
