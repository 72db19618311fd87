// Google Docs connector: the real REST client against a local server that answers like the Docs
// and Drive APIs (test/helpers/gdocs-server.ts), and the offline mock mode over recorded responses.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readGoogleDocs } from '../../ts/connectors/index.js';
import type { GDocsOptions } from '../../ts/connectors/gdocs/index.js';
import { ROOT } from '../helpers/cli.js';
import { type GDocsServer, type GDocsServerOptions, startGDocsServer, testKeyPair } from '../helpers/gdocs-server.js';
import { tempDir } from '../helpers/tmp.js';
import { all, failure } from '../helpers/records.js';

const MOCK = path.join(ROOT, 'test/fixtures/connectors/gdocs-mock');
const recorded = (id: string) => JSON.parse(readFileSync(path.join(MOCK, 'documents', `${id}.json`), 'utf8')) as unknown;
const TOKEN = 'ya29.test-token-0123456789';
const savedEnv = { ...process.env };
let server: GDocsServer | undefined;

beforeEach(() => {
  for (const k of [
    'GOOGLE_OAUTH_TOKEN',
    'GOOGLE_OAUTH_TOKEN_FILE',
    'GOOGLE_APPLICATION_CREDENTIALS',
    'TINYFORGE_GDOCS_DOCS_URL',
    'TINYFORGE_GDOCS_DRIVE_URL',
  ])
    delete process.env[k];
});

afterEach(async () => {
  await server?.close();
  server = undefined;
  process.env = { ...savedEnv };
});

async function serve(options: Partial<GDocsServerOptions> = {}): Promise<GDocsServer> {
  server = await startGDocsServer({
    documents: {
      '1FaqDocAbc123': recorded('1FaqDocAbc123'),
      '1PolicyDocXyz789': recorded('1PolicyDocXyz789'),
      '1NotesDoc456': recorded('1NotesDoc456'),
    },
    tokens: [TOKEN],
    ...options,
  });
  return server;
}

function live(extra: Partial<GDocsOptions> = {}): GDocsOptions {
  return { docsBaseUrl: server!.url, driveBaseUrl: server!.url, retry: { baseDelayMs: 5, maxDelayMs: 2000 }, ...extra };
}

describe('Google Docs over HTTP', () => {
  it('reads a document with GOOGLE_OAUTH_TOKEN: headings become sections, tables and bullets text', async () => {
    await serve();
    process.env.GOOGLE_OAUTH_TOKEN = TOKEN;
    const records = await all(readGoogleDocs(live({ documentIds: ['1FaqDocAbc123'] })));
    expect(records).toEqual([
      {
        text: 'Support FAQ\n\nReturns\n\nItems can be returned within 30 days of delivery.',
        source: { kind: 'gdocs', documentId: '1FaqDocAbc123', title: 'Support FAQ', heading: 'Returns' },
      },
      {
        text: 'Shipping\n\n- Orders ship within 2 business days.\n\nExpress\n\nNext day, 9.90 EUR',
        source: { kind: 'gdocs', documentId: '1FaqDocAbc123', title: 'Support FAQ', heading: 'Shipping' },
      },
    ]);
    expect(server!.requests).toEqual([
      expect.objectContaining({ method: 'GET', url: '/v1/documents/1FaqDocAbc123', authorization: `Bearer ${TOKEN}` }),
    ]);
  });

  it('lists a Drive folder across pages (nextPageToken) and reads every document', async () => {
    await serve({ folders: { '0TeamFolder': ['1FaqDocAbc123', '1PolicyDocXyz789', '1NotesDoc456'] }, pageSize: 2 });
    const tokenFile = path.join(tempDir(), 'token.json');
    writeFileSync(tokenFile, JSON.stringify({ access_token: TOKEN, expires_in: 3599 }));
    const records = await all(readGoogleDocs(live({ folderId: '0TeamFolder', tokenFile })));
    expect(records.map((r) => (r.source as { documentId: string }).documentId)).toEqual([
      '1FaqDocAbc123',
      '1FaqDocAbc123',
      '1PolicyDocXyz789',
      '1NotesDoc456',
    ]);
    const listings = server!.requests.filter((r) => r.url.startsWith('/drive/v3/files'));
    expect(listings).toHaveLength(2);
    const first = new URL(listings[0]!.url, server!.url).searchParams;
    expect(first.get('q')).toBe("'0TeamFolder' in parents and mimeType='application/vnd.google-apps.document' and trashed=false");
    expect(first.get('pageToken')).toBeNull();
    expect(new URL(listings[1]!.url, server!.url).searchParams.get('pageToken')).toBe('page-2');
  });

  it('maps 401, 403 and 404 to coded errors that never contain the token', async () => {
    await serve({ forbidden: ['1PolicyDocXyz789'] });
    const wrong = await failure(readGoogleDocs(live({ documentIds: ['1FaqDocAbc123'], token: 'ya29.not-valid-token' })));
    expect(wrong.code).toBe('GDOCS_UNAUTHORIZED');
    expect(`${wrong.message} ${wrong.stack} ${JSON.stringify(wrong)}`).not.toContain('ya29.not-valid-token');
    const forbidden = await failure(readGoogleDocs(live({ documentIds: ['1PolicyDocXyz789'], token: TOKEN })));
    expect(forbidden.code).toBe('GDOCS_FORBIDDEN');
    const missing = await failure(readGoogleDocs(live({ documentIds: ['1DoesNotExist'], token: TOKEN })));
    expect(missing.code).toBe('NOT_FOUND');
    expect(missing.message).toContain('1DoesNotExist');
    expect(`${forbidden.message}${missing.message}`).not.toContain(TOKEN);
    // Only the first attempt each: 4xx other than 429 are not retried.
    expect(server!.requests).toHaveLength(3);
  });

  it('retries 429 honouring Retry-After, and 5xx with backoff, then succeeds', async () => {
    await serve({ failures: { '1NotesDoc456': [{ status: 429, retryAfter: '1' }, { status: 503 }, { status: 500 }] } });
    const records = await all(readGoogleDocs(live({ documentIds: ['1NotesDoc456'], token: TOKEN })));
    expect(records).toEqual([
      { text: 'Version 1.2 adds offline mode.', source: { kind: 'gdocs', documentId: '1NotesDoc456', title: 'Release notes' } },
    ]);
    const times = server!.requests.map((r) => r.at);
    expect(times).toHaveLength(4);
    // The wait after the 429 is at least its Retry-After (1 s).
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(950);
  });

  it('gives up after the retry budget with GDOCS_UNAVAILABLE (5xx) or GDOCS_RATE_LIMITED (429)', async () => {
    await serve({ failures: { '1NotesDoc456': Array(3).fill({ status: 503 }), '1FaqDocAbc123': Array(3).fill({ status: 429 }) } });
    const down = await failure(
      readGoogleDocs(live({ documentIds: ['1NotesDoc456'], token: TOKEN, retry: { retries: 2, baseDelayMs: 1 } }))
    );
    expect(down.code).toBe('GDOCS_UNAVAILABLE');
    const limited = await failure(
      readGoogleDocs(live({ documentIds: ['1FaqDocAbc123'], token: TOKEN, retry: { retries: 2, baseDelayMs: 1 } }))
    );
    expect(limited.code).toBe('GDOCS_RATE_LIMITED');
    expect(server!.requests).toHaveLength(6);
  });

  it('authenticates a service account with an RS256 JWT the token endpoint verifies, once per run', async () => {
    const { privateKey, publicKey } = testKeyPair();
    const email = 'ingest@tinyforge-test.iam.gserviceaccount.com';
    await serve({ serviceAccounts: { [email]: publicKey }, tokens: [] });
    const keyFile = path.join(tempDir(), 'sa.json');
    writeFileSync(
      keyFile,
      JSON.stringify({
        type: 'service_account',
        client_email: email,
        private_key: privateKey,
        private_key_id: 'k1',
        token_uri: `${server!.url}/token`,
      })
    );
    process.env.GOOGLE_APPLICATION_CREDENTIALS = keyFile;
    const records = await all(readGoogleDocs(live({ documentIds: ['1PolicyDocXyz789', '1NotesDoc456'] })));
    expect(records).toHaveLength(2);
    expect(server!.issued).toHaveLength(1);
    expect(server!.requests.map((r) => r.url)).toEqual(['/token', '/v1/documents/1PolicyDocXyz789', '/v1/documents/1NotesDoc456']);
    expect(server!.requests[1]!.authorization).toBe(`Bearer ${server!.issued[0]}`);
  });

  it('fails with GDOCS_UNAUTHORIZED when the JWT is signed by another key, without leaking the key', async () => {
    const email = 'ingest@tinyforge-test.iam.gserviceaccount.com';
    await serve({ serviceAccounts: { [email]: testKeyPair().publicKey }, tokens: [] });
    const other = testKeyPair().privateKey;
    const keyFile = path.join(tempDir(), 'sa.json');
    writeFileSync(
      keyFile,
      JSON.stringify({ type: 'service_account', client_email: email, private_key: other, token_uri: `${server!.url}/token` })
    );
    const err = await failure(readGoogleDocs(live({ documentIds: ['1NotesDoc456'], serviceAccountKeyFile: keyFile })));
    expect(err.code).toBe('GDOCS_UNAUTHORIZED');
    const text = `${err.message} ${err.stack} ${JSON.stringify(err)}`;
    expect(text).not.toContain('PRIVATE KEY');
    expect(text).not.toContain(other.split('\n')[1]!);
  });

  it('refuses to run without credentials, and rejects ids that could bend the URL', async () => {
    await serve();
    expect((await failure(readGoogleDocs(live({ documentIds: ['1NotesDoc456'] })))).code).toBe('GDOCS_NO_CREDENTIALS');
    expect((await failure(readGoogleDocs(live({ documentIds: ['../drive/v3/files'], token: TOKEN })))).code).toBe('INVALID_ARGUMENT');
    expect(server!.requests).toHaveLength(0);
  });
});

describe('Google Docs mock mode', () => {
  it('reads a folder from recorded responses with no network and no credentials', async () => {
    const records = await all(readGoogleDocs({ mode: 'mock', mockDir: MOCK, folderId: '0TeamFolderQwe' }));
    expect(records.map((r) => r.source)).toEqual([
      { kind: 'gdocs', documentId: '1FaqDocAbc123', title: 'Support FAQ', heading: 'Returns' },
      { kind: 'gdocs', documentId: '1FaqDocAbc123', title: 'Support FAQ', heading: 'Shipping' },
      { kind: 'gdocs', documentId: '1PolicyDocXyz789', title: 'Travel policy', heading: 'Booking' },
      { kind: 'gdocs', documentId: '1NotesDoc456', title: 'Release notes' },
    ]);
    // A soft line break (\v) becomes a newline.
    expect(records[2]).toMatchObject({ text: 'Booking\n\nBook trains over flights under 500 km.\nUse the company portal.' });
  });

  it('names a document missing from the recording NOT_FOUND', async () => {
    const err = await failure(readGoogleDocs({ mode: 'mock', mockDir: MOCK, documentIds: ['1Missing'] }));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain('1Missing');
  });
});
