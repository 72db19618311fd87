// Plain text and Markdown → `{text}` chunks. Read line by line (streams); blocks are paragraphs
// separated by blank lines, Markdown headings (ATX `#` and setext underlines) start a new chunk and
// name its section, and fenced code blocks are never cut at their blank lines.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { type Block, Chunker } from './chunk.js';
import { checkFile } from './normalize.js';
import type { CommonOptions, SourceRecord } from './types.js';

export interface TextOptions extends CommonOptions {
  /** Treat the file as Markdown (headings, code fences). Defaults to true for .md/.markdown. */
  markdown?: boolean;
}

/** Turns lines into blocks; exported for tests and for other document sources. */
export async function* textBlocks(lines: AsyncIterable<string>, markdown: boolean): AsyncGenerator<Block> {
  let para: string[] = [];
  let paraLine = 0;
  let lineNo = 0;
  let fence: string | undefined;
  const flush = (): Block | undefined => {
    if (para.length === 0) return undefined;
    const block: Block = { kind: 'paragraph', text: para.join('\n'), line: paraLine };
    para = [];
    return block;
  };
  for await (const raw of lines) {
    lineNo += 1;
    const line = lineNo === 1 ? raw.replace(/^\uFEFF/, '') : raw;
    if (markdown) {
      const fenceMatch = /^\s{0,3}(`{3,}|~{3,})/.exec(line);
      if (fenceMatch) {
        if (fence === undefined) fence = fenceMatch[1]![0]!;
        else if (fenceMatch[1]![0] === fence) fence = undefined;
      } else if (fence === undefined) {
        if (/^\s{0,3}#{1,6}(\s|$)/.test(line)) {
          const b = flush();
          if (b) yield b;
          yield { kind: 'heading', text: line.trim(), line: lineNo };
          continue;
        }
        // Setext: a single-line paragraph underlined with === or --- is a heading.
        if (para.length === 1 && /^\s{0,3}(=+|-+)\s*$/.test(line)) {
          const text = para[0]!.trim();
          para = [];
          yield { kind: 'heading', text, line: paraLine };
          continue;
        }
      }
      if (fence !== undefined || fenceMatch) {
        if (para.length === 0) paraLine = lineNo;
        para.push(line);
        continue;
      }
    }
    if (line.trim() === '') {
      const b = flush();
      if (b) yield b;
      continue;
    }
    if (para.length === 0) paraLine = lineNo;
    para.push(line);
  }
  const b = flush();
  if (b) yield b;
}

export async function* readText(path: string, options: TextOptions = {}): AsyncGenerator<SourceRecord> {
  await checkFile(path);
  const markdown = options.markdown ?? /\.(md|markdown|mdx)$/i.test(path);
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  const chunker = new Chunker(options);
  try {
    for await (const block of textBlocks(lines, markdown)) {
      for (const chunk of chunker.push(block)) yield toRecord(path, chunk);
    }
    for (const chunk of chunker.end()) yield toRecord(path, chunk);
  } finally {
    lines.close();
  }
}

function toRecord(path: string, chunk: { text: string; line?: number; section?: string }): SourceRecord {
  const source: SourceRecord['source'] = { kind: 'file', path };
  if (chunk.line !== undefined) source.line = chunk.line;
  if (chunk.section !== undefined) source.section = chunk.section;
  return { text: chunk.text, source };
}
