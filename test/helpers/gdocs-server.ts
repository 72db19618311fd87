// A local stand-in for the Google Docs v1 / Drive v3 APIs and the OAuth token endpoint, on
// 127.0.0.1, answering in the APIs' shapes: bearer-token checks (401), per-document 403/404,
// scripted failures (429 with Retry-After, 5xx) before success, Drive listings paginated with
// nextPageToken, and a service-account token endpoint that verifies the RS256 JWT signature with
// the public half of a key pair the test generated.
import { createVerify, generateKeyPairSync } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ScriptedFailure {
  status: number;
  retryAfter?: string;
}

export interface GDocsServerOptions {
  /** documentId → Docs API document JSON. */
  documents: Record<string, unknown>;
  /** folderId → ids of the Google Docs in it, listed `pageSize` per page. */
  folders?: Record<string, string[]>;
  pageSize?: number;
  /** Bearer tokens that are accepted. */
  tokens: string[];
  /** documentId → failures answered (in order) before the document is served. */
  failures?: Record<string, ScriptedFailure[]>;
  forbidden?: string[];
  /** Service accounts the token endpoint knows: client_email → PEM public key. */
  serviceAccounts?: Record<string, string>;
}

export interface GDocsRequest {
  method: string;
  url: string;
  authorization: string | undefined;
  at: number;
}

export interface GDocsServer {
  url: string;
  requests: GDocsRequest[];
  /** Tokens issued by the token endpoint (also accepted as bearer tokens). */
  issued: string[];
  close(): Promise<void>;
}

export function testKeyPair(): { privateKey: string; publicKey: string } {
  return generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers });
  res.end(JSON.stringify(body));
}

const googleError = (code: number, status: string, message: string) => ({ error: { code, message, status } });

async function readBody(req: IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body;
}

export async function startGDocsServer(options: GDocsServerOptions): Promise<GDocsServer> {
  const requests: GDocsRequest[] = [];
  const issued: string[] = [];
  const failures = structuredClone(options.failures ?? {});
  const pageSize = options.pageSize ?? 2;
  let baseUrl = '';

  const tokenEndpoint = async (req: IncomingMessage, res: ServerResponse) => {
    const form = new URLSearchParams(await readBody(req));
    const jwt = form.get('assertion') ?? '';
    const [h, c, s] = jwt.split('.');
    if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer' || !h || !c || !s) {
      return send(res, 400, { error: 'invalid_request', error_description: 'bad grant' });
    }
    const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg?: string };
    const claims = JSON.parse(Buffer.from(c, 'base64url').toString()) as {
      iss: string;
      aud: string;
      scope: string;
      iat: number;
      exp: number;
    };
    const publicKey = options.serviceAccounts?.[claims.iss];
    const now = Math.floor(Date.now() / 1000);
    const valid =
      header.alg === 'RS256' &&
      publicKey !== undefined &&
      createVerify('RSA-SHA256').update(`${h}.${c}`).verify(publicKey, Buffer.from(s, 'base64url')) &&
      claims.aud === `${baseUrl}/token` &&
      claims.scope.includes('https://www.googleapis.com/auth/documents.readonly') &&
      claims.exp > now &&
      claims.iat <= now + 60;
    if (!valid) return send(res, 400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
    const token = `ya29.issued-${issued.length + 1}-${Math.random().toString(36).slice(2)}`;
    issued.push(token);
    send(res, 200, { access_token: token, expires_in: 3599, token_type: 'Bearer' });
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', baseUrl);
    requests.push({ method: req.method ?? 'GET', url: req.url ?? '/', authorization: req.headers.authorization, at: Date.now() });
    if (req.method === 'POST' && url.pathname === '/token') {
      tokenEndpoint(req, res).catch(() => send(res, 500, { error: 'internal' }));
      return;
    }
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!bearer || (!options.tokens.includes(bearer) && !issued.includes(bearer))) {
      return send(res, 401, googleError(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.'), {
        'www-authenticate': 'Bearer realm="https://accounts.google.com/"',
      });
    }
    const doc = /^\/v1\/documents\/([^/]+)$/.exec(url.pathname);
    if (doc) {
      const id = decodeURIComponent(doc[1]!);
      const failure = failures[id]?.shift();
      if (failure) {
        return send(
          res,
          failure.status,
          googleError(failure.status, failure.status === 429 ? 'RESOURCE_EXHAUSTED' : 'UNAVAILABLE', 'try again'),
          failure.retryAfter ? { 'retry-after': failure.retryAfter } : {}
        );
      }
      if (options.forbidden?.includes(id))
        return send(res, 403, googleError(403, 'PERMISSION_DENIED', 'The caller does not have permission'));
      const body = options.documents[id];
      if (!body) return send(res, 404, googleError(404, 'NOT_FOUND', `Requested entity was not found.`));
      return send(res, 200, body);
    }
    if (url.pathname === '/drive/v3/files') {
      const folder = /^'([^']+)' in parents/.exec(url.searchParams.get('q') ?? '')?.[1];
      const ids = folder ? options.folders?.[folder] : undefined;
      if (!ids) return send(res, 404, googleError(404, 'NOT_FOUND', `File not found: ${folder}.`));
      const start = Number(url.searchParams.get('pageToken')?.replace('page-', '') ?? 0);
      const files = ids
        .slice(start, start + pageSize)
        .map((id) => ({ id, name: `doc ${id}`, mimeType: 'application/vnd.google-apps.document' }));
      const next = start + pageSize < ids.length ? { nextPageToken: `page-${start + pageSize}` } : {};
      return send(res, 200, { kind: 'drive#fileList', incompleteSearch: false, files, ...next });
    }
    send(res, 404, googleError(404, 'NOT_FOUND', 'no such route'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: baseUrl,
    requests,
    issued,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
