// Two implementations of the same small API: the real Docs v1 / Drive v3 REST client, and an
// offline one reading recorded responses from a folder (`--mock DIR`):
//   DIR/documents/<documentId>.json     the body of GET /v1/documents/<documentId>
//   DIR/drive/<folderId>.json           the first page of GET /drive/v3/files?q='<folderId>' in parents...
//   DIR/drive/<folderId>@<token>.json   the page whose pageToken is <token> (named by nextPageToken)
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ForgeError } from '../../errors.js';
import { type AuthOptions, type TokenSource, resolveTokenSource } from './auth.js';
import type { DocsDocument } from './document.js';
import { type RetryPolicy, requestJson } from './http.js';

export const GOOGLE_DOC_MIME = 'application/vnd.google-apps.document';

export interface DriveFile {
  id: string;
  name?: string;
  mimeType?: string;
}

export interface DriveFileList {
  files?: DriveFile[];
  nextPageToken?: string;
}

export interface DocsApi {
  getDocument(documentId: string): Promise<DocsDocument>;
  /** Google Docs directly inside a folder, page by page. */
  listFolder(folderId: string): AsyncGenerator<DriveFile>;
}

export interface HttpDocsOptions extends AuthOptions {
  /** @default $TINYFORGE_GDOCS_DOCS_URL or https://docs.googleapis.com */
  docsBaseUrl?: string;
  /** @default $TINYFORGE_GDOCS_DRIVE_URL or https://www.googleapis.com */
  driveBaseUrl?: string;
  retry?: RetryPolicy;
  sleep?: (ms: number) => Promise<void>;
}

// Ids are [A-Za-z0-9_-]; checking keeps them from bending a URL or the Drive query.
function checkId(id: string, what: string): void {
  if (!/^[A-Za-z0-9_-]+$/.test(id)) {
    throw new ForgeError('INVALID_ARGUMENT', `invalid ${what} id "${id}"`, {
      suggestion: 'pass the id from the URL (docs.google.com/document/d/<id>, drive.google.com/drive/folders/<id>)',
    });
  }
}

export class HttpDocsApi implements DocsApi {
  private readonly tokens: TokenSource;
  private readonly docsBase: string;
  private readonly driveBase: string;

  constructor(private readonly options: HttpDocsOptions = {}) {
    this.tokens = resolveTokenSource(options);
    const trim = (u: string) => u.replace(/\/+$/, '');
    this.docsBase = trim(options.docsBaseUrl ?? process.env.TINYFORGE_GDOCS_DOCS_URL ?? 'https://docs.googleapis.com');
    this.driveBase = trim(options.driveBaseUrl ?? process.env.TINYFORGE_GDOCS_DRIVE_URL ?? 'https://www.googleapis.com');
  }

  private async get<T>(url: string, what: string): Promise<T> {
    const token = await this.tokens();
    const ctx = {
      what,
      ...(this.options.retry ? { policy: this.options.retry } : {}),
      ...(this.options.sleep ? { sleep: this.options.sleep } : {}),
    };
    return requestJson<T>(url, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } }, ctx);
  }

  getDocument(documentId: string): Promise<DocsDocument> {
    checkId(documentId, 'document');
    return this.get(`${this.docsBase}/v1/documents/${documentId}`, `document ${documentId}`);
  }

  async *listFolder(folderId: string): AsyncGenerator<DriveFile> {
    checkId(folderId, 'folder');
    let pageToken: string | undefined;
    do {
      const params = new URLSearchParams({
        q: `'${folderId}' in parents and mimeType='${GOOGLE_DOC_MIME}' and trashed=false`,
        fields: 'nextPageToken,files(id,name,mimeType)',
        pageSize: '100',
        orderBy: 'name',
        supportsAllDrives: 'true',
        includeItemsFromAllDrives: 'true',
      });
      if (pageToken) params.set('pageToken', pageToken);
      const page = await this.get<DriveFileList>(`${this.driveBase}/drive/v3/files?${params}`, `folder ${folderId}`);
      yield* page.files ?? [];
      pageToken = page.nextPageToken;
    } while (pageToken);
  }
}

export class MockDocsApi implements DocsApi {
  constructor(private readonly dir: string) {}

  private async read<T>(file: string, what: string): Promise<T> {
    let text: string;
    try {
      text = await readFile(path.join(this.dir, file), 'utf8');
    } catch {
      throw new ForgeError('NOT_FOUND', `${what} not found in the recorded responses (${path.join(this.dir, file)})`, {
        suggestion: 'record the API response into the mock folder, or check the id',
      });
    }
    try {
      return JSON.parse(text) as T;
    } catch (err) {
      throw new ForgeError('INVALID_DATA', `${path.join(this.dir, file)}: invalid JSON (${(err as Error).message})`);
    }
  }

  getDocument(documentId: string): Promise<DocsDocument> {
    checkId(documentId, 'document');
    return this.read(path.join('documents', `${documentId}.json`), `document ${documentId}`);
  }

  async *listFolder(folderId: string): AsyncGenerator<DriveFile> {
    checkId(folderId, 'folder');
    let pageToken: string | undefined;
    do {
      const name = pageToken ? `${folderId}@${pageToken}.json` : `${folderId}.json`;
      const page = await this.read<DriveFileList>(path.join('drive', name), `folder ${folderId}`);
      // The real query filters by mimeType; recorded listings may hold other files.
      yield* (page.files ?? []).filter((f) => !f.mimeType || f.mimeType === GOOGLE_DOC_MIME);
      pageToken = page.nextPageToken;
    } while (pageToken);
  }
}
