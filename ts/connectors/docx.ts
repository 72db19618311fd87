// DOCX → `{text}` chunks by section. mammoth turns Word's styles into HTML (Heading 1 → <h1>, ...);
// its output is a small, regular subset of HTML, so its block elements are read with a few
// patterns rather than a DOM. The heading above each chunk is its provenance.
import { ForgeError } from '../errors.js';
import { checkFile } from './normalize.js';
import { type Block, Chunker } from './chunk.js';
import type { CommonOptions, SourceRecord } from './types.js';

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

function decode(html: string): string {
  return html
    .replace(/<br\s*\/?>/gi, '\n')
    .replace(/<[^>]+>/g, '')
    .replace(/&(#x?[0-9a-f]+|[a-z]+);/gi, (m, e: string) => {
      if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
      return ENTITIES[e.toLowerCase()] ?? m;
    });
}

/** mammoth's HTML → blocks: headings, paragraphs, list items and table cells. */
export function htmlBlocks(html: string): Block[] {
  const blocks: Block[] = [];
  const re = /<(h[1-6]|p|li|td|th)(?:\s[^>]*)?>([\s\S]*?)<\/\1>/gi;
  for (const m of html.matchAll(re)) {
    const tag = m[1]!.toLowerCase();
    // A list item or cell may contain <p>s of its own: take its text once.
    const text = decode(m[2]!).trim();
    if (text === '') continue;
    blocks.push({ kind: tag.startsWith('h') ? 'heading' : 'paragraph', text: tag === 'li' ? `- ${text}` : text });
  }
  return blocks;
}

export async function* readDocx(file: string, options: CommonOptions = {}): AsyncGenerator<SourceRecord> {
  await checkFile(file);
  let html: string;
  try {
    // Loaded on first use: mammoth takes ~0.3 s to import and most ingests never see a DOCX.
    const mammoth = (await import('mammoth')).default;
    html = (await mammoth.convertToHtml({ path: file })).value;
  } catch (err) {
    throw new ForgeError('INVALID_DATA', `${file}: not a readable DOCX (${(err as Error).message})`, {
      suggestion: 'open and re-save it in Word/LibreOffice as .docx',
    });
  }
  const chunker = new Chunker(options);
  const emit = (chunk: { text: string; section?: string }): SourceRecord => ({
    text: chunk.text,
    source: chunk.section === undefined ? { kind: 'file', path: file } : { kind: 'file', path: file, section: chunk.section },
  });
  for (const block of htmlBlocks(html)) for (const chunk of chunker.push(block)) yield emit(chunk);
  for (const chunk of chunker.end()) yield emit(chunk);
}
