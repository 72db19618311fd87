// PDF → `{text}` per page (chunked when a page is over the token budget), with the page number in
// the provenance. pdfjs-dist's legacy build is the one that runs in Node; a PDF's cross-reference
// table is at its end, so the file is read whole (pages are then extracted one at a time).
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ForgeError } from '../errors.js';
import { checkFile } from './normalize.js';
import { Chunker } from './chunk.js';
import type { CommonOptions, SourceRecord } from './types.js';

type PdfJs = typeof import('pdfjs-dist/legacy/build/pdf.mjs');
let pdfjs: Promise<PdfJs> | undefined;

// Standard (non-embedded) fonts need pdfjs's font data; without it pdfjs warns on every page.
function standardFontDataUrl(): string {
  const pkg = createRequire(import.meta.url).resolve('pdfjs-dist/package.json');
  return `${path.join(path.dirname(pkg), 'standard_fonts')}${path.sep}`;
}

export async function* readPdf(file: string, options: CommonOptions = {}): AsyncGenerator<SourceRecord> {
  await checkFile(file);
  pdfjs ??= import('pdfjs-dist/legacy/build/pdf.mjs');
  const { getDocument, VerbosityLevel } = await pdfjs;
  const data = new Uint8Array(await readFile(file));
  const task = getDocument({
    data,
    standardFontDataUrl: standardFontDataUrl(),
    isEvalSupported: false,
    disableFontFace: true,
    verbosity: VerbosityLevel.ERRORS,
  });
  let doc: Awaited<typeof task.promise>;
  try {
    doc = await task.promise;
  } catch (err) {
    await task.destroy();
    throw new ForgeError('INVALID_DATA', `${file}: not a readable PDF (${(err as Error).message})`, {
      suggestion: 'check that the file is a PDF and not encrypted',
    });
  }
  try {
    for (let pageNo = 1; pageNo <= doc.numPages; pageNo++) {
      const page = await doc.getPage(pageNo);
      const content = await page.getTextContent();
      let text = '';
      for (const item of content.items) {
        if (!('str' in item)) continue;
        text += item.str;
        if (item.hasEOL) text += '\n';
      }
      page.cleanup();
      // Lines within a paragraph are joined by pdfjs's EOLs; blank lines separate paragraphs.
      const chunker = new Chunker(options);
      const blocks = text.split(/\n\s*\n/).map((t) => ({ kind: 'paragraph' as const, text: t.trim() }));
      const chunks = blocks.flatMap((b) => chunker.push(b)).concat(chunker.end());
      for (const chunk of chunks) yield { text: chunk.text, source: { kind: 'file', path: file, page: pageNo } };
    }
  } finally {
    await doc.destroy();
  }
}
