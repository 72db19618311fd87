// redact(): no credential survives into an error message or a log line.
import { describe, expect, it } from 'vitest';
import { redact, redactUrl, registerSecret } from '../../ts/connectors/redact.js';

describe('redact', () => {
  it('masks the password in connection URLs, keeping user, host and database', () => {
    const text = 'connect failed: postgres://alice:s3cr%40t@db.internal:5432/prod?sslmode=require';
    const out = redact(text);
    expect(out).not.toContain('s3cr');
    expect(out).toContain('postgres://alice:***@db.internal:5432/prod');
    expect(redactUrl('postgresql://bob:hunter22@127.0.0.1/x')).toBe('postgresql://bob:***@127.0.0.1/x');
    expect(redactUrl('postgres://127.0.0.1/x')).toBe('postgres://127.0.0.1/x');
  });

  it('masks key=value secrets in conninfo and query strings', () => {
    const out = redact("host=db user=app password='p a s s' dbname=x; https://x/y?access_token=ya29.abc&pageSize=10");
    expect(out).not.toMatch(/p a s s|ya29\.abc/);
    expect(out).toContain('pageSize=10');
    expect(out).toContain('user=app');
  });

  it('masks bearer tokens, JSON credential fields and PEM private keys', () => {
    const pem = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----';
    const text = `Authorization: Bearer ya29.A0ARrdaM-xyz {"access_token":"ya29.zzz","private_key":"${pem.replace(/\n/g, '\\n')}","client_email":"a@b.iam"} ${pem}`;
    const out = redact(text);
    expect(out).not.toMatch(/ya29|MIIEvQ/);
    expect(out).toContain('a@b.iam');
    expect(out).toContain('[REDACTED PRIVATE KEY]');
  });

  it('masks registered secrets and explicit ones wherever they appear', () => {
    registerSecret('tok-registered-123');
    expect(redact('the token tok-registered-123 was rejected')).toBe('the token *** was rejected');
    expect(redact('password is plainword here', ['plainword'])).toBe('password is *** here');
    // Short values are not registered (they would blank out ordinary words).
    registerSecret('ab');
    expect(redact('a tab b')).toBe('a tab b');
  });
});
