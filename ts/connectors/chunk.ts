// Splits documents into `{text}` chunks under a token budget, at the most natural boundary that
// fits: a heading starts a new chunk; paragraphs are packed together while they fit; a paragraph
// over the budget is split at sentences, then words, then characters. The token count is a
// parameter so callers can pass the base model's tokenizer instead of the chars/4 estimate.
import { DEFAULT_MAX_TOKENS, type TokenCounter, approxTokens } from './types.js';

export interface Block {
  kind: 'heading' | 'paragraph';
  text: string;
  /** 1-based line (or page) where the block starts, carried into the chunk's provenance. */
  line?: number;
}

export interface Chunk {
  text: string;
  line?: number;
  section?: string;
}

export class Chunker {
  private parts: string[] = [];
  private tokens = 0;
  private line: number | undefined;
  private section: string | undefined;
  private readonly budget: number;
  private readonly count: TokenCounter;

  constructor(options: { maxTokens?: number; countTokens?: TokenCounter } = {}) {
    this.budget = Math.max(1, options.maxTokens ?? DEFAULT_MAX_TOKENS);
    this.count = options.countTokens ?? approxTokens;
  }

  /** Adds a block; returns the chunks it completed. */
  push(block: Block): Chunk[] {
    const text = block.text.trim();
    if (text === '') return [];
    const out: Chunk[] = [];
    if (block.kind === 'heading') {
      // Consecutive headings (a title, then a section) stay together: a chunk of headings alone
      // would be a useless record.
      if (!this.onlyHeadings) this.flush(out);
      this.section = text.replace(/^#{1,6}\s+/, '').replace(/\s+#+\s*$/, '');
    }
    const tokens = this.count(text);
    if (tokens > this.budget) {
      // Too big for any chunk: keep what is pending (a lone heading travels with the first piece).
      const pieces = splitOversize(text, this.budget, this.count);
      if (!this.onlyHeadings) this.flush(out);
      for (const piece of pieces) {
        this.add(piece, this.count(piece), block.line, out);
        this.flush(out);
      }
      return out;
    }
    this.add(text, tokens, block.line, out);
    // After a heading the pending parts are all headings (stacked, or this one alone after a flush).
    this.onlyHeadings = block.kind === 'heading';
    return out;
  }

  /** Flushes what is left at the end of a document. */
  end(): Chunk[] {
    const out: Chunk[] = [];
    this.flush(out);
    this.section = undefined;
    return out;
  }

  /** The pending parts are all headings (so far): the next heading joins them. */
  private onlyHeadings = false;

  private add(text: string, tokens: number, line: number | undefined, out: Chunk[]): void {
    if (this.parts.length > 0 && this.tokens + tokens > this.budget) this.flush(out);
    if (this.parts.length === 0) this.line = line;
    this.parts.push(text);
    this.tokens += tokens;
  }

  private flush(out: Chunk[]): void {
    if (this.parts.length > 0) {
      const chunk: Chunk = { text: this.parts.join('\n\n') };
      if (this.line !== undefined) chunk.line = this.line;
      if (this.section !== undefined) chunk.section = this.section;
      out.push(chunk);
    }
    this.parts = [];
    this.tokens = 0;
    this.line = undefined;
    this.onlyHeadings = false;
  }
}

/** Splits text over the budget: sentences, then words, then characters. */
export function splitOversize(text: string, budget: number, count: TokenCounter): string[] {
  const levels: Array<(s: string) => string[]> = [
    (s) => s.split(/(?<=[.!?。])\s+/),
    (s) => s.split(/\s+/),
    (s) => {
      // Characters: cut where the counter says the piece is full (binary search per piece).
      const pieces: string[] = [];
      let rest = s;
      while (rest.length > 0) {
        let lo = 1;
        let hi = rest.length;
        while (lo < hi) {
          const mid = Math.ceil((lo + hi) / 2);
          if (count(rest.slice(0, mid)) <= budget) lo = mid;
          else hi = mid - 1;
        }
        pieces.push(rest.slice(0, lo));
        rest = rest.slice(lo);
      }
      return pieces;
    },
  ];
  const split = (s: string, level: number): string[] => {
    if (count(s) <= budget || level >= levels.length) return [s];
    const units = levels[level]!(s).filter((u) => u !== '');
    const out: string[] = [];
    let current = '';
    for (const unit of units) {
      const joined = current === '' ? unit : `${current} ${unit}`;
      if (count(joined) <= budget) {
        current = joined;
        continue;
      }
      if (current !== '') out.push(current);
      if (count(unit) <= budget) current = unit;
      else {
        out.push(...split(unit, level + 1));
        current = '';
      }
    }
    if (current !== '') out.push(current);
    return out;
  };
  return split(text, 0);
}
