// The tiny export fixture shared by the export suites: a random tiny base model and a LoRA run
// trained on it long enough that greedy answers vary (so runtime comparisons mean something),
// the folder an int8 export writes, and the checks those suites share.
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Tokenizer, createTinyModel } from '@tinyforge/native';
import { expect } from 'vitest';
import { SERVICE_FILES } from '../../ts/pipeline/export-service.js';
import { runCli } from './cli.js';

export const QA = Array.from({ length: 12 }, (_, i) => ({
  input: `Which code has item ${i}?`,
  output: `Item ${i} has code ${100 + i * 3}.`,
}));
/** The model files of an int8 export folder (without the service files). */
export const MODEL_FILES = [
  'config.json',
  'generation_config.json',
  'onnx/model_quantized.onnx',
  // The weights, as ONNX external data (memory-mapped by ORT).
  'onnx/model_quantized.onnx_data',
  'tinyforge.json',
  'tokenizer.json',
  'tokenizer_config.json',
];
/** Everything an int8 export folder holds. */
export const FOLDER = [...MODEL_FILES, ...SERVICE_FILES].sort();

export interface ExportFixture {
  dir: string;
  /** TINYFORGE_HOME of the fixture's registry. */
  home: string;
  base: string;
  run: string;
  data: string;
}

/** A tiny base model and a LoRA run on QA (~2 s of training), in a fresh temporary folder. */
export async function createExportFixture(): Promise<ExportFixture> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tinyforge-export-'));
  const base = path.join(dir, 'base');
  await createTinyModel(base, { seed: 3 });
  const data = path.join(dir, 'data.jsonl');
  writeFileSync(data, `${QA.map((r) => JSON.stringify(r)).join('\n')}\n`);
  const home = path.join(dir, 'home');
  const run = path.join(dir, 'run');
  // Long enough (200 steps, ~2 s) that the adapter changes the answers and greedy decoding says
  // something ("Item 1 has code 100."): a random tiny model alone repeats one token, which would
  // make the runtime comparisons below trivially equal.
  const r = await runCli(
    [
      'train',
      '--data',
      data,
      '--out',
      run,
      '--base',
      base,
      '--max-steps',
      '200',
      '--batch-size',
      '4',
      '--lr',
      '2e-2',
      '--lora-r',
      '16',
      // Pinned: at lr 2e-2 the no-flag recipe's alpha 32 collapses the tiny model's answers to two
      // tokens, which would make the runtime comparisons below trivially equal.
      '--lora-alpha',
      '16',
      '--lora-dropout',
      '0',
      '--eval-split',
      '0',
      '--target-modules',
      'q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj',
    ],
    { env: { TINYFORGE_HOME: home } }
  );
  expect(r.code, r.stderr).toBe(0);
  return { dir, home, base, run, data };
}

// biome-ignore lint/suspicious/noExplicitAny: the manifests are read as loose JSON and checked field by field.
export const json = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, any>;

/** Every file under `dir`, relative, sorted. */
export function tree(dir: string, rel = ''): string[] {
  return readdirSync(path.join(dir, rel), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? tree(dir, path.join(rel, e.name)) : [path.join(rel, e.name)]))
    .sort();
}

/** Nothing of an export to `out` exists: not the folder, not a staging sibling. */
export function expectNothingLeft(out: string): void {
  expect(existsSync(out), `${out} exists`).toBe(false);
  const parent = path.dirname(out);
  const leftovers = existsSync(parent) ? readdirSync(parent).filter((n) => n.startsWith(`.${path.basename(out)}.`)) : [];
  expect(leftovers).toEqual([]);
}

/** The same chat prompt ids our Generator builds: the template's text, encoded without extra specials. */
export function chatIds(modelDir: string, question: string): number[] {
  const tok = Tokenizer.fromFile(modelDir);
  return Array.from(
    tok.encode(tok.applyChatTemplate([{ role: 'user', content: question }], { addGenerationPrompt: true }), { addSpecialTokens: false })
  );
}
