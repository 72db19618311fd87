// Bearer-token check. Both sides are hashed first so timingSafeEqual compares equal lengths and
// the time taken says nothing about how much of the key a guess got right, or its length.
import { createHash, timingSafeEqual } from 'node:crypto';
import { ApiError } from './api-error.js';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export function bearerChecker(apiKey: string): (authorization: string) => boolean {
  const expected = digest(apiKey);
  return (authorization) => {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    return match !== null && timingSafeEqual(digest(match[1] ?? ''), expected);
  };
}

export function unauthorized(hadHeader: boolean): ApiError {
  return new ApiError(401, hadHeader ? 'Incorrect API key provided.' : 'Missing API key: send "Authorization: Bearer <key>".', {
    code: 'invalid_api_key',
    headers: { 'WWW-Authenticate': 'Bearer' },
  });
}
