// Credentials for the Docs/Drive APIs, in the order Google's own clients look: an explicit token,
// GOOGLE_OAUTH_TOKEN, a token file, then a service-account JSON key (GOOGLE_APPLICATION_CREDENTIALS)
// exchanged for an access token with a self-signed RS256 JWT (RFC 7523). Every secret is registered
// with redact() as soon as it is read.
import { createSign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ForgeError } from '../../errors.js';
import { registerSecret } from '../redact.js';
import { type RetryPolicy, requestJson } from './http.js';

export const SCOPES = ['https://www.googleapis.com/auth/documents.readonly', 'https://www.googleapis.com/auth/drive.readonly'];

export interface AuthOptions {
  token?: string;
  tokenFile?: string;
  serviceAccountKeyFile?: string;
  retry?: RetryPolicy;
}

interface ServiceAccountKey {
  type: string;
  client_email: string;
  private_key: string;
  private_key_id?: string;
  token_uri?: string;
}

export type TokenSource = () => Promise<string>;

const b64url = (data: string | Buffer) => Buffer.from(data).toString('base64url');

/** A signed JWT assertion for the service-account flow. */
export function signJwt(key: ServiceAccountKey, scopes: string[], now = Math.floor(Date.now() / 1000)): string {
  const header: Record<string, string> = { alg: 'RS256', typ: 'JWT' };
  if (key.private_key_id) header.kid = key.private_key_id;
  const claims = {
    iss: key.client_email,
    scope: scopes.join(' '),
    aud: key.token_uri ?? 'https://oauth2.googleapis.com/token',
    iat: now,
    exp: now + 3600,
  };
  const unsigned = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const signature = createSign('RSA-SHA256').update(unsigned).sign(key.private_key);
  return `${unsigned}.${b64url(signature)}`;
}

function readKey(file: string): ServiceAccountKey {
  let key: ServiceAccountKey;
  try {
    key = JSON.parse(readFileSync(file, 'utf8')) as ServiceAccountKey;
  } catch (err) {
    throw new ForgeError(
      'GDOCS_NO_CREDENTIALS',
      `cannot read the service-account key ${file}: ${(err as NodeJS.ErrnoException).code ?? 'invalid JSON'}`,
      {
        suggestion: 'download a JSON key for the service account from the Google Cloud console',
      }
    );
  }
  registerSecret(key.private_key);
  if (key.type !== 'service_account' || !key.client_email || !key.private_key) {
    throw new ForgeError('GDOCS_NO_CREDENTIALS', `${file} is not a service-account key (needs type, client_email, private_key)`, {
      suggestion: 'use a JSON key of type "service_account"',
    });
  }
  return key;
}

function serviceAccountTokens(file: string, retry: RetryPolicy | undefined): TokenSource {
  const key = readKey(file);
  let cached: { token: string; expires: number } | undefined;
  return async () => {
    // Refresh a minute early so a long folder never runs on an expired token.
    if (cached && cached.expires - 60_000 > Date.now()) return cached.token;
    const tokenUri = key.token_uri ?? 'https://oauth2.googleapis.com/token';
    const body = new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      assertion: signJwt(key, SCOPES),
    }).toString();
    let answer: { access_token?: string; expires_in?: number };
    try {
      answer = await requestJson(
        tokenUri,
        { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body },
        { what: 'the service-account token', policy: retry }
      );
    } catch (err) {
      const e = err as ForgeError;
      throw new ForgeError('GDOCS_UNAUTHORIZED', `the service-account token exchange failed: ${e.message}`, {
        suggestion: `check that ${key.client_email} exists, its key is not revoked, and the clock is right`,
      });
    }
    if (!answer.access_token) throw new ForgeError('GDOCS_UNAUTHORIZED', 'the token endpoint answered without an access_token');
    registerSecret(answer.access_token);
    cached = { token: answer.access_token, expires: Date.now() + (answer.expires_in ?? 3600) * 1000 };
    return cached.token;
  };
}

function tokenFromFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ForgeError('GDOCS_NO_CREDENTIALS', `cannot read the token file ${file} (${(err as NodeJS.ErrnoException).code})`);
  }
  // Either the bare token or the JSON a token endpoint returns.
  if (text.startsWith('{')) {
    try {
      const token = (JSON.parse(text) as { access_token?: string }).access_token;
      if (token) return token;
    } catch {
      // fall through to the error below
    }
    throw new ForgeError('GDOCS_NO_CREDENTIALS', `the token file ${file} has no access_token`);
  }
  return text;
}

export function resolveTokenSource(options: AuthOptions = {}): TokenSource {
  const env = process.env;
  const direct = options.token ?? (options.tokenFile ? tokenFromFile(options.tokenFile) : undefined);
  const fromEnv = env.GOOGLE_OAUTH_TOKEN ?? (env.GOOGLE_OAUTH_TOKEN_FILE ? tokenFromFile(env.GOOGLE_OAUTH_TOKEN_FILE) : undefined);
  const token = direct ?? (options.serviceAccountKeyFile ? undefined : fromEnv);
  if (token) {
    registerSecret(token);
    return async () => token;
  }
  const keyFile = options.serviceAccountKeyFile ?? env.GOOGLE_APPLICATION_CREDENTIALS;
  if (keyFile) return serviceAccountTokens(keyFile, options.retry);
  throw new ForgeError('GDOCS_NO_CREDENTIALS', 'no Google credentials', {
    suggestion:
      'set GOOGLE_OAUTH_TOKEN (or --token-file), or GOOGLE_APPLICATION_CREDENTIALS to a service-account key; or use --mock DIR offline',
  });
}
