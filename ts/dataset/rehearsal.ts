// Rehearsal text: paragraphs of plain general English shipped with TinyForge
// (data/general-replay.txt: 60 paragraphs on everyday subjects, ~5.9k SmolLM2 tokens, written for
// this project; none is from, or on the subject of, the held-out prose eval measures with), trained
// with the plain language-model loss alongside a user's small set so the adapter keeps the model's
// general language. Replaying general data is the standard remedy for forgetting in continual
// fine-tuning (e.g. Scialom et al. 2022, "Fine-tuned Language Models are Continual Learners").
//
// Each passage is seen ONCE per run: recipe-apply.ts writes them to the run's rehearsal.jsonl and
// the trainer (crates/train/src/epoch_plan.rs) gives every epoch all the records and its own slice
// of the passages. Measured on the 30 facts (benches/results/recipe-sweep.md), 30 passages repeated every epoch for
// 8 epochs were memorised (training loss 0.06) and took general perplexity 38.5 -> 145.9, while the
// same 30 passages seen once took it to 33.0 with 18/30 facts recalled. Passages the base model
// wrote itself (the first version of this file) were worse still: 200.5.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { packageRoot } from '../config/index.js';
import { ForgeError } from '../errors.js';

/** The shipped general-text paragraphs, one passage per blank-line-separated paragraph. */
export function rehearsalFile(): string {
  return path.join(packageRoot(), 'data', 'general-replay.txt');
}

export interface RehearsalRecord {
  text: string;
  _rehearsal: true;
}

/** The shipped paragraphs (60), in file order. */
export async function rehearsalPassages(): Promise<string[]> {
  const file = rehearsalFile();
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch (err) {
    throw new ForgeError('NOT_FOUND', `rehearsal text not found: ${file}`, {
      suggestion: 'reinstall tinyforge (the package ships data/general-replay.txt), or train with --rehearsal 0',
      cause: err,
    });
  }
  return raw
    .split(/\r?\n\s*\r?\n/u)
    .map((p) => p.replace(/\s+/gu, ' ').trim())
    .filter((p) => p.length > 0);
}

/**
 * The first `count` shipped paragraphs as {"text"} records, in file order (cycled when more are
 * asked for than there are). File order, not a seeded choice: the run's data file, and so the
 * trainer's seeded batches, are then those the sweep measured.
 */
export async function rehearsalRecords(count: number): Promise<RehearsalRecord[]> {
  const all = await rehearsalPassages();
  if (count <= 0 || all.length === 0) return [];
  return Array.from({ length: count }, (_, k) => ({ text: all[k % all.length]!, _rehearsal: true as const }));
}
