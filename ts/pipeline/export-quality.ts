// The quality an export reports: perplexity of the written model on the held-out text the
// package ships (test/fixtures/heldout: prose written for this project + the sample eval set's
// answers, 2,774 SmolLM2 tokens), scored teacher-forced through ONNX Runtime by the native
// `InferenceSession.score` (windows of 512 moved by 256, exactly as test/python/onnx_quality.py),
// and the same for the fp32 graph of the same weights as the reference. The fp32 reference is
// the file --keep-fp32 wrote, else a temporary fp32 graph written into the staging folder and
// removed again (for SmolLM2 a 540 MB file: a few seconds), skipped only for models whose fp32
// graph passes REFERENCE_MAX_BYTES.
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../config/project.js';
import { ForgeError } from '../errors.js';
import { native } from '../native.js';

/** Largest fp32 graph written just to measure the reference (about 500M parameters). */
export const REFERENCE_MAX_BYTES = 2e9;

export interface ScoredModel {
  /** Relative to the export folder (the reference's temporary file is named as such). */
  file: string;
  perplexity: number;
  nll: number;
}

export interface ExportQuality {
  /** What was scored: the shipped held-out text, and how. */
  text: string;
  tokens: number;
  model: ScoredModel;
  /** The fp32 graph of the same weights (absent when skipped: see `referenceSkipped`). */
  fp32?: ScoredModel;
  /** model.perplexity / fp32.perplexity - 1 (e.g. 0.01 = 1% worse than fp32). */
  vsFp32?: number;
  referenceSkipped?: string;
  seconds: number;
}

/** The held-out text, one string, joined as the Python harness joins it. */
export function heldoutText(root = packageRoot()): string {
  const dir = path.join(root, 'test', 'fixtures', 'heldout');
  try {
    return `${readFileSync(path.join(dir, 'prose.txt'), 'utf8')}\n${readFileSync(path.join(dir, 'qna_answers.txt'), 'utf8')}`;
  } catch (err) {
    throw new ForgeError('NOT_FOUND', `the held-out text for the quality report is missing in ${dir}: ${(err as Error).message}`, {
      suggestion: 'reinstall tinyforge: the package ships test/fixtures/heldout',
    });
  }
}

/**
 * Scores `modelFile` (relative to `dir`, a staging export folder with config.json and
 * tokenizer.json) on `text`. The session picks its model from tinyforge.json's `model.file`, so a
 * minimal one is written for the duration (the real manifest replaces it afterwards).
 */
async function score(dir: string, modelFile: string, text: string): Promise<{ tokens: number; nll: number }> {
  const manifest = path.join(dir, 'tinyforge.json');
  writeFileSync(`${manifest}.tmp`, JSON.stringify({ model: { file: modelFile } }));
  renameSync(`${manifest}.tmp`, manifest);
  // One slot and a short window: the session's KV buffer is never used by scoring.
  const session = await native().InferenceSession.load(dir, { slots: 1, contextLen: 64 });
  try {
    const [s] = await session.score([text]);
    if (!s || s.tokens === 0) throw new ForgeError('EXPORT_CHECK_FAILED', `${modelFile}: the held-out text gave no tokens to score`);
    if (!Number.isFinite(s.nll))
      throw new ForgeError('EXPORT_CHECK_FAILED', `${modelFile}: non-finite log-likelihood on the held-out text`);
    return s;
  } finally {
    session.close();
    rmSync(manifest, { force: true });
  }
}

const scored = (file: string, s: { tokens: number; nll: number }): ScoredModel => ({
  file,
  perplexity: Math.exp(s.nll / s.tokens),
  nll: s.nll,
});

export interface QualityOptions {
  /** Export folder being built (staging). */
  dir: string;
  /** The written model, relative to `dir`. */
  modelFile: string;
  /** The fp32 model already in the folder (--keep-fp32 or --quantize none), relative to `dir`. */
  fp32File?: string;
  /** Writes an fp32 graph of the same weights to `file` (absolute); returns its size. */
  writeFp32?: (file: string) => Promise<number>;
  /** The fp32 graph's size, estimated before writing it (4 bytes a parameter). */
  fp32Bytes?: number;
}

export async function measureQuality(o: QualityOptions): Promise<ExportQuality> {
  const t0 = performance.now();
  const text = heldoutText();
  const model = await score(o.dir, o.modelFile, text);
  const q: ExportQuality = {
    text: 'test/fixtures/heldout (prose.txt + qna_answers.txt), teacher-forced windows of 512 moved by 256, ONNX Runtime',
    tokens: model.tokens,
    model: scored(o.modelFile, model),
    seconds: 0,
  };
  if (o.fp32File === o.modelFile) {
    q.fp32 = q.model;
  } else if (o.fp32File) {
    q.fp32 = scored(o.fp32File, await score(o.dir, o.fp32File, text));
  } else if (o.writeFp32 && (o.fp32Bytes ?? 0) <= REFERENCE_MAX_BYTES) {
    const rel = 'onnx/.quality-reference-fp32.onnx';
    const file = path.join(o.dir, rel);
    try {
      await o.writeFp32(file);
      q.fp32 = { ...scored(rel, await score(o.dir, rel, text)), file: 'fp32 graph of the same weights (written to measure, not kept)' };
    } finally {
      rmSync(file, { force: true });
      // Its weights are in an external data file next to it (tinyforge-onnx `external_data`).
      rmSync(`${file}_data`, { force: true });
    }
  } else {
    q.referenceSkipped = `the fp32 graph (${((o.fp32Bytes ?? 0) / 1e9).toFixed(1)} GB) is over ${REFERENCE_MAX_BYTES / 1e9} GB; pass --keep-fp32 to measure it`;
  }
  if (q.fp32) q.vsFp32 = q.model.perplexity / q.fp32.perplexity - 1;
  q.seconds = (performance.now() - t0) / 1000;
  return q;
}

/** One line for the export summary. */
export function describeQuality(q: ExportQuality): string {
  const ref =
    q.fp32 && q.fp32 !== q.model
      ? `; fp32 ${q.fp32.perplexity.toFixed(2)} (${q.vsFp32! >= 0 ? '+' : ''}${(100 * q.vsFp32!).toFixed(1)}%)`
      : '';
  return `quality: perplexity ${q.model.perplexity.toFixed(2)} on ${q.tokens} held-out tokens${ref}${q.referenceSkipped ? ` (fp32 reference skipped: ${q.referenceSkipped})` : ''}`;
}
