// Rehearsal text: passages the base model writes itself from neutral openings, trained alongside a
// user's small set so the adapter keeps the model's general language (a {"text"} record's loss
// covers every token, and on the model's own samples that loss pulls the tuned distribution back
// toward the base one). Why: on 30 facts, 8 epochs of LoRA took general-text perplexity from 39.2
// to 67.6 (benches/results/recipe-sweep.md); replaying general data is the standard remedy for
// forgetting, and self-generated replay needs no data we do not have (Huang et al. 2024,
// "Mitigating Catastrophic Forgetting in Large Language Models with Self-Synthesized Rehearsal").
// Measured, it does not work as written here: 30 passages trained alongside the 30 facts for 8
// epochs took the general perplexity to 200 and recall to 15/30 (the model memorises its own
// incoherent temperature-1 samples), so `train` uses it only when asked (`--rehearsal N`).
import type { Generator } from '@tinyforge/native';

/** Openings on everyday subjects, none near any product domain; cycled when more are asked. */
const OPENINGS: readonly string[] = [
  'The river behind the old mill',
  'Most people who learn to bake bread',
  'On the first cold morning of the year,',
  'The history of the bicycle',
  'When the library reopened after the repairs,',
  'A good way to start a vegetable garden',
  'The train was late again, and',
  'Honeybees communicate with one another by',
  'In many small towns, the weekly market',
  'The museum keeps its oldest maps',
  'Learning a second language as an adult',
  'The storm had passed by the time',
  'Chess players often say that',
  'Our grandmother kept a notebook of recipes',
  'The mountain path climbs slowly through',
  'Every autumn the swallows',
  'A lighthouse keeper in the last century',
  'The school play was nearly cancelled when',
  'Tea was first drunk',
  'After the concert, the musicians',
  'The city council met on Tuesday to discuss',
  'Walking in the forest at dusk,',
  'The oldest bridge in the valley',
  'Children who read for pleasure',
  'The fishing boats came back early because',
  'A well-made wooden chair',
  'The first thing you notice about the island',
  'Paper was once so expensive that',
  'The night sky in winter',
  'Neighbours gathered in the square when',
  'The recipe calls for three eggs, but',
  'Clocks in railway stations',
];

export interface RehearsalOptions {
  passages: number;
  seed: number;
  /** Longest passage in generated tokens. @default 96 */
  maxTokens?: number;
}

/**
 * `passages` {"text"} records, each an opening and the model's own continuation sampled at
 * temperature 1 (its distribution as it is, not its greedy mode), seeded per passage.
 */
export async function rehearsalRecords(generator: Generator, options: RehearsalOptions): Promise<{ text: string; _rehearsal: true }[]> {
  const out: { text: string; _rehearsal: true }[] = [];
  for (let i = 0; i < options.passages; i++) {
    const opening = OPENINGS[i % OPENINGS.length]!;
    const g = await generator.generate(opening, {
      chatTemplate: false,
      temperature: 1,
      maxTokens: options.maxTokens ?? 96,
      seed: (options.seed * 7919 + i) >>> 0,
    });
    const text = `${opening}${/^[\s,.;:]/u.test(g.text) ? '' : ' '}${g.text}`.trim();
    if (text.length > opening.length + 20) out.push({ text, _rehearsal: true });
  }
  return out;
}
