// Google Docs → `{text}` chunks, one document or every document of a Drive folder. Chunks break at
// headings and carry the document id, title and heading as provenance.
import { ForgeError } from '../../errors.js';
import { Chunker } from '../chunk.js';
import type { CommonOptions, SourceRecord } from '../types.js';
import { type DocsApi, type HttpDocsOptions, HttpDocsApi, MockDocsApi } from './client.js';
import { type DocsDocument, documentBlocks } from './document.js';

export { HttpDocsApi, MockDocsApi, type DocsApi, type HttpDocsOptions } from './client.js';
export { signJwt, SCOPES } from './auth.js';

export interface GDocsOptions extends CommonOptions, HttpDocsOptions {
  documentIds?: string[];
  folderId?: string;
  /** 'mock' reads recorded responses from `mockDir` instead of calling Google. */
  mode?: 'live' | 'mock';
  mockDir?: string;
  /** Use this API object (tests, custom transports) instead of building one. */
  api?: DocsApi;
}

export function* documentRecords(doc: DocsDocument, options: CommonOptions = {}): Generator<SourceRecord> {
  const chunker = new Chunker(options);
  const toRecord = (chunk: { text: string; section?: string }): SourceRecord => {
    const source: SourceRecord['source'] = { kind: 'gdocs', documentId: doc.documentId };
    if (doc.title) source.title = doc.title;
    if (chunk.section) source.heading = chunk.section;
    return { text: chunk.text, source };
  };
  for (const block of documentBlocks(doc.body?.content)) for (const chunk of chunker.push(block)) yield toRecord(chunk);
  for (const chunk of chunker.end()) yield toRecord(chunk);
}

export async function* readGoogleDocs(options: GDocsOptions): AsyncGenerator<SourceRecord> {
  const ids = options.documentIds ?? [];
  if (ids.length === 0 && !options.folderId) {
    throw new ForgeError('INVALID_ARGUMENT', 'give a document (--doc ID) or a folder (--folder ID)', {
      suggestion: 'the id is the part of the URL after /d/ (documents) or /folders/ (folders)',
    });
  }
  let api = options.api;
  if (!api) {
    if (options.mode === 'mock' || options.mockDir) {
      if (!options.mockDir) throw new ForgeError('INVALID_ARGUMENT', 'mock mode needs a folder of recorded responses (--mock DIR)');
      api = new MockDocsApi(options.mockDir);
    } else api = new HttpDocsApi(options);
  }
  for (const id of ids) yield* documentRecords(await api.getDocument(id), options);
  if (options.folderId) {
    for await (const file of api.listFolder(options.folderId)) {
      yield* documentRecords(await api.getDocument(file.id), options);
    }
  }
}
