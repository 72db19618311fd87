// One file over HTTP into `<dest>.part`: follows redirects, resumes a partial `.part` with Range,
// retries an interrupted transfer, and checks the sha256 the hub announces. The `.part` file is
// left complete and verified for the caller to rename; a half file never has the final name.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { discard, httpGet, NetworkError } from './http.js';

export type DownloadFailure = 'not-found' | 'auth' | 'http' | 'network' | 'checksum' | 'tool';

export class DownloadError extends Error {
  constructor(
    readonly kind: DownloadFailure,
    message: string
  ) {
    super(message);
    this.name = 'DownloadError';
  }
}

export interface DownloadOptions {
  /** Sent only to this origin (never across a redirect to a CDN). */
  token?: string | undefined;
  tokenOrigin?: string | undefined;
  signal?: AbortSignal | undefined;
  onBytes?: (received: number, total: number | undefined) => void;
  /** Extra attempts after an interrupted transfer. */
  retries?: number;
}

export interface Downloaded {
  sha256: string;
  size: number;
  /** The sha256 the server announced, when it did (LFS files). */
  announced?: string;
  /** `X-Repo-Commit` of the hub, when sent. */
  commit?: string;
}

const MAX_REDIRECTS = 10;
const SHA256_HEX = /^[0-9a-f]{64}$/;

async function sizeOf(file: string): Promise<number> {
  return stat(file).then(
    (s) => s.size,
    () => 0
  );
}

function header(res: IncomingMessage, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** An LFS file's ETag is its sha256 (quoted, sometimes weak); a git blob's is a sha1, ignored. */
function sha256FromEtag(value: string | undefined): string | undefined {
  const bare = value?.replace(/^W\//, '').replace(/"/g, '').trim().toLowerCase();
  return bare && SHA256_HEX.test(bare) ? bare : undefined;
}

interface Opened {
  res: IncomingMessage;
  announced?: string;
  commit?: string;
}

async function open(url: URL, from: number, opts: DownloadOptions): Promise<Opened> {
  let current = url;
  let announced: string | undefined;
  let commit: string | undefined;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const headers: Record<string, string> = { 'Accept-Encoding': 'identity' };
    if (from > 0) headers.Range = `bytes=${from}-`;
    if (opts.token && current.origin === opts.tokenOrigin) headers.Authorization = `Bearer ${opts.token}`;
    const res = await httpGet(current, headers, opts.signal);
    // The hub puts the LFS sha256 on the redirect itself; the CDN's own ETag may be anything.
    announced ??= sha256FromEtag(header(res, 'x-linked-etag'));
    commit ??= header(res, 'x-repo-commit');
    const status = res.statusCode ?? 0;
    const location = header(res, 'location');
    if (status >= 300 && status < 400 && location) {
      discard(res);
      current = new URL(location, current);
      continue;
    }
    announced ??= sha256FromEtag(header(res, 'etag'));
    return { res, announced, commit };
  }
  throw new DownloadError('http', `more than ${MAX_REDIRECTS} redirects from ${url.href}`);
}

/** Feeds the bytes already on disk into the hash, so a resumed file is still hashed end to end. */
async function hashExisting(file: string, hash: Hash, signal?: AbortSignal): Promise<void> {
  await pipeline(
    createReadStream(file),
    // A sink stage: it consumes the stream and yields nothing.
    // biome-ignore lint/correctness/useYield: pipeline() takes an async generator function as the final consumer
    async function* (src: AsyncIterable<Buffer>) {
      for await (const chunk of src) hash.update(chunk);
    },
    { signal }
  );
}

async function attempt(url: URL, part: string, opts: DownloadOptions): Promise<Downloaded> {
  let have = await sizeOf(part);
  const { res, announced, commit } = await open(url, have, opts);
  const status = res.statusCode ?? 0;
  const where = `${url.origin}${url.pathname}`;
  if (status === 416 && have > 0) {
    discard(res);
    // Range past the end: the part may already be whole (`Content-Range: bytes */<size>`).
    const total = Number(/\/(\d+)$/.exec(header(res, 'content-range') ?? '')?.[1]);
    if (total !== have) {
      await rm(part, { force: true });
      throw new NetworkError(`${where}: the server refused to resume; restarting`);
    }
    const hash = createHash('sha256');
    await hashExisting(part, hash, opts.signal);
    return finish(hash.digest('hex'), have, announced, commit, part, where);
  }
  if (status === 404) {
    discard(res);
    throw new DownloadError('not-found', `${where}: 404 not found`);
  }
  if (status === 401 || status === 403) {
    discard(res);
    throw new DownloadError('auth', `${where}: ${status} (gated or private repo; set HF_TOKEN)`);
  }
  if (status !== 200 && status !== 206) {
    discard(res);
    const retryable = status >= 500 || status === 429;
    if (retryable) throw new NetworkError(`${where}: HTTP ${status}`);
    throw new DownloadError('http', `${where}: HTTP ${status}`);
  }
  const hash = createHash('sha256');
  if (status === 206) {
    const start = Number(/bytes (\d+)-/.exec(header(res, 'content-range') ?? '')?.[1]);
    if (start !== have) {
      discard(res);
      await rm(part, { force: true });
      throw new NetworkError(`${where}: resumed at byte ${start}, expected ${have}; restarting`);
    }
    await hashExisting(part, hash, opts.signal);
  } else {
    have = 0; // 200: the server sends the whole file whatever we asked.
  }
  const length = Number(header(res, 'content-length'));
  const total = Number.isFinite(length) && header(res, 'content-length') !== undefined ? have + length : undefined;
  let received = have;
  opts.onBytes?.(received, total);
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      received += chunk.length;
      opts.onBytes?.(received, total);
      done(null, chunk);
    },
  });
  try {
    await pipeline(res, counter, createWriteStream(part, { flags: have > 0 ? 'a' : 'w' }), { signal: opts.signal });
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    throw new NetworkError(`${where}: transfer interrupted at byte ${received}`, { cause: err });
  }
  if (!res.complete || (total !== undefined && received !== total)) {
    throw new NetworkError(`${where}: transfer interrupted at byte ${received} of ${total ?? '?'}`);
  }
  return finish(hash.digest('hex'), received, announced, commit, part, where);
}

async function finish(
  sha256: string,
  size: number,
  announced: string | undefined,
  commit: string | undefined,
  part: string,
  where: string
): Promise<Downloaded> {
  if (announced && announced !== sha256) {
    await rm(part, { force: true }); // Resuming from bad bytes would only fail again.
    throw new DownloadError('checksum', `${where}: sha256 ${sha256} differs from the announced ${announced}`);
  }
  const out: Downloaded = { sha256, size };
  if (announced) out.announced = announced;
  if (commit) out.commit = commit;
  return out;
}

/** Downloads `url` into `part`, resuming what is there; retries interrupted transfers. */
export async function downloadToPart(url: URL, part: string, opts: DownloadOptions = {}): Promise<Downloaded> {
  await mkdir(path.dirname(part), { recursive: true });
  const retries = opts.retries ?? 3;
  for (let i = 0; ; i++) {
    try {
      return await attempt(url, part, opts);
    } catch (err) {
      if (opts.signal?.aborted || !(err instanceof NetworkError) || !err.retryable || i >= retries) {
        if (err instanceof NetworkError) throw new DownloadError('network', err.message);
        throw err;
      }
      await delay(250 * 2 ** i, undefined, { signal: opts.signal });
    }
  }
}
