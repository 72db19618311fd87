// A Docs API v1 `Document` → text blocks. The body is a list of structural elements; a paragraph's
// text is the concatenation of its elements' text runs, and its paragraphStyle.namedStyleType says
// whether it is a heading (TITLE, HEADING_1..6). Tables are read cell by cell; the table of
// contents is skipped (it repeats the headings).
import type { Block } from '../chunk.js';

export interface DocsParagraph {
  elements?: Array<{
    textRun?: { content?: string };
    person?: { personProperties?: { name?: string } };
    richLink?: { richLinkProperties?: { title?: string } };
  }>;
  paragraphStyle?: { namedStyleType?: string };
  bullet?: unknown;
}

export interface DocsStructuralElement {
  paragraph?: DocsParagraph;
  table?: { tableRows?: Array<{ tableCells?: Array<{ content?: DocsStructuralElement[] }> }> };
  tableOfContents?: unknown;
  sectionBreak?: unknown;
}

export interface DocsDocument {
  documentId: string;
  title?: string;
  body?: { content?: DocsStructuralElement[] };
}

const HEADING = /^(TITLE|HEADING_[1-6])$/;

function paragraphText(p: DocsParagraph): string {
  let text = '';
  for (const e of p.elements ?? []) {
    if (e.textRun?.content) text += e.textRun.content;
    else if (e.person?.personProperties?.name) text += e.person.personProperties.name;
    else if (e.richLink?.richLinkProperties?.title) text += e.richLink.richLinkProperties.title;
  }
  // Docs ends every paragraph with \n and uses \v for soft line breaks.
  return text.replace(/\v/g, '\n').replace(/\n+$/, '');
}

export function* documentBlocks(content: DocsStructuralElement[] | undefined): Generator<Block> {
  for (const element of content ?? []) {
    if (element.paragraph) {
      const text = paragraphText(element.paragraph).trim();
      if (text === '') continue;
      const style = element.paragraph.paragraphStyle?.namedStyleType ?? 'NORMAL_TEXT';
      if (HEADING.test(style)) yield { kind: 'heading', text };
      else yield { kind: 'paragraph', text: element.paragraph.bullet ? `- ${text}` : text };
    } else if (element.table) {
      for (const row of element.table.tableRows ?? []) {
        for (const cell of row.tableCells ?? []) yield* documentBlocks(cell.content);
      }
    }
  }
}
