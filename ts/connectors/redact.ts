// Credentials never leave the process in text: every error message and log line that could hold
// a connection string, a token or a key goes through `redact()`. Secrets the process loads at run
// time (an OAuth token from env, a database password) are registered so they are removed even
// where no pattern would recognise them.

const MASK = '***';
const registered = new Set<string>();

/** Remember a secret so every later `redact()` removes it wherever it appears. */
export function registerSecret(secret: string | undefined): void {
  // Very short values would blank out ordinary words; they are caught by the patterns instead.
  if (secret && secret.length >= 4) registered.add(secret);
}

const PATTERNS: Array<[RegExp, string]> = [
  // PEM private keys (a service-account JSON key holds one).
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g, '[REDACTED PRIVATE KEY]'],
  // URL user info: postgres://user:password@host → postgres://user:***@host.
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*):[^\s@/]*@/gi, `$1:${MASK}@`],
  // Authorization headers.
  [/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g, `$1 ${MASK}`],
  // key=value pairs in conninfo strings and query strings.
  [
    /\b(password|passwd|pwd|access_token|refresh_token|id_token|client_secret|assertion|api_key|apikey|token|key|sslpassword)=('[^']*'|[^\s&'"]+)/gi,
    `$1=${MASK}`,
  ],
  // JSON fields.
  [
    /"(password|access_token|refresh_token|id_token|client_secret|private_key|private_key_id|assertion)"\s*:\s*"(?:[^"\\]|\\.)*"/gi,
    `"$1":"${MASK}"`,
  ],
];

export function redact(text: string, secrets: Array<string | undefined> = []): string {
  let out = text;
  for (const secret of [...secrets, ...registered]) {
    if (secret && secret.length >= 4) out = out.split(secret).join(MASK);
  }
  for (const [pattern, replacement] of PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** A database URL safe to print: the password (if any) masked. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = MASK;
    for (const key of [...parsed.searchParams.keys()]) {
      if (/pass|token|secret|key/i.test(key)) parsed.searchParams.set(key, MASK);
    }
    return parsed.toString();
  } catch {
    return redact(url);
  }
}

/**
 * Last line of defence for errors from libraries: rewrites message and stack through redact() and
 * drops properties that may echo input (Node's URL errors keep the whole URL in `input`).
 */
export function scrubError(err: unknown, secrets: Array<string | undefined> = []): unknown {
  if (!(err instanceof Error)) return typeof err === 'string' ? redact(err, secrets) : err;
  err.message = redact(err.message, secrets);
  if (err.stack) err.stack = redact(err.stack, secrets);
  const bag = err as unknown as Record<string, unknown>;
  for (const key of ['input', 'config', 'request', 'options']) if (key in bag) delete bag[key];
  return err;
}
