// Eval loss and perplexity for `foremforge eval` (and `train --eval-data`): teacher-forced
// negative log-likelihood of the reference answers given their prompts, and of general text (not
// the training domain) to see whether a fine-tune kept the base model's language ability.
//
// A `Scorer` wraps whichever model answers: the candle `Generator` (`score`, `scoreAnswers`, the
// latter labelled exactly as the trainer labels a reply) or an export's `InferenceSession.score`,
// which takes plain texts only. For an export, an answer's loss is the difference of two scores —
// the whole rendered chat minus the rendered prompt (generation header included) — which counts
// the same tokens as the trainer's labels whenever the prompt's tokens are a prefix of the chat's
// (a test pins this against `scoreAnswers` on the candle side).
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Generator, InferenceSession } from '@tinyforge/native';
import { packageRoot } from '../config/index.js';
import type { ChatMessage } from '../dataset/index.js';
import { ForgeError } from '../errors.js';
import { native } from '../native.js';

/** Summed NLL (nats) over `tokens` predicted tokens. */
export interface Score {
  tokens: number;
  nll: number;
}

export interface LossSummary {
  tokens: number;
  /** Mean NLL per token (nats). */
  loss: number;
  /** exp(loss). */
  perplexity: number;
}

export interface Scorer {
  /** Each text on its own, every token after the first counted. */
  scoreTexts(texts: string[]): Promise<Score[]>;
  /** Each chat's last (assistant) turn given the turns before it. */
  scoreAnswers(chats: ChatMessage[][]): Promise<Score[]>;
}

/** Token-weighted mean over `scores`; undefined when no token was scored. */
export function summarizeLoss(scores: readonly Score[]): LossSummary | undefined {
  const tokens = scores.reduce((s, x) => s + x.tokens, 0);
  if (tokens === 0) return undefined;
  const loss = scores.reduce((s, x) => s + x.nll, 0) / tokens;
  return { tokens, loss, perplexity: Math.exp(loss) };
}

export function candleScorer(generator: Generator): Scorer {
  return {
    scoreTexts: (texts) => generator.score(texts),
    scoreAnswers: (chats) => generator.scoreAnswers(chats),
  };
}

/** The scorer of a plain-text `score(texts)` (an export's session): answers by difference. */
export function differenceScorer(
  scoreTexts: (texts: string[]) => Promise<Score[]>,
  render: (messages: ChatMessage[], generationPrompt: boolean) => string
): Scorer {
  return {
    scoreTexts,
    async scoreAnswers(chats) {
      const texts: string[] = [];
      chats.forEach((chat, i) => {
        const prompt = render(chat.slice(0, -1), true);
        const full = render(chat, false);
        if (!full.startsWith(prompt)) {
          throw new ForgeError('INVALID_ARGUMENT', `chats[${i}]: the chat template does not render the prompt as a prefix of the chat`);
        }
        texts.push(prompt, full);
      });
      const scores = await scoreTexts(texts);
      return chats.map((_, i) => {
        const [p, f] = [scores[2 * i]!, scores[2 * i + 1]!];
        return { tokens: f.tokens - p.tokens, nll: f.nll - p.nll };
      });
    },
  };
}

/**
 * An export's scorer, or undefined while its `InferenceSession` has no `score` (eval then reports
 * the loss as unavailable). The chat template is the export's own (tokenizer_config.json).
 */
export function ortScorer(session: InferenceSession, dir: string): Scorer | undefined {
  const withScore = session as InferenceSession & { score?: (texts: string[]) => Promise<Score[]> };
  if (typeof withScore.score !== 'function') return undefined;
  const tokenizer = native().Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
  return differenceScorer(
    (texts) => withScore.score!.call(session, texts),
    (messages, generationPrompt) => tokenizer.applyChatTemplate(messages, { addGenerationPrompt: generationPrompt })
  );
}

/** The general-text set shipped with TinyForge: held-out prose paragraphs (also the export check's). */
export function defaultGeneralText(): string {
  return path.join(packageRoot(), 'test', 'fixtures', 'heldout', 'prose.txt');
}

/**
 * Paragraphs of a general-text file: `.jsonl` of `{"text"}` records, or plain text split at blank
 * lines. Each paragraph is scored on its own, so none is longer than a context window needs.
 */
export async function readGeneralText(file: string = defaultGeneralText()): Promise<string[]> {
  if (!existsSync(file) || !statSync(file).isFile()) {
    throw new ForgeError('NOT_FOUND', `general-text file not found: ${file}`, {
      suggestion: 'pass --general alone for the shipped set, or a .txt (paragraphs) / .jsonl ({"text"}) file',
    });
  }
  const raw = await readFile(file, 'utf8');
  let texts: string[];
  if (file.endsWith('.jsonl')) {
    texts = [];
    raw.split('\n').forEach((line, i) => {
      if (line.trim() === '') return;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        throw new ForgeError('INVALID_DATA', `${file}:${i + 1}: not valid JSON`);
      }
      const text = (value as { text?: unknown } | null)?.text;
      if (typeof text !== 'string' || text.trim() === '') {
        throw new ForgeError('INVALID_DATA', `${file}:${i + 1}: text: must be a non-empty string ({"text"} records)`);
      }
      texts.push(text);
    });
  } else {
    texts = raw
      .split(/\r?\n\s*\r?\n/u)
      .map((p) => p.trim())
      .filter((p) => p !== '');
  }
  if (texts.length === 0) throw new ForgeError('INVALID_DATA', `${file} has no text to score`);
  return texts;
}
