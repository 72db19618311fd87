// A small Hugging Face hub on 127.0.0.1 for pull tests: `GET /{org}/{name}/resolve/{rev}/{file}`
// the way the real hub answers it. LFS files (*.safetensors, *.gguf) carry their sha256 as
// ETag/X-Linked-Etag; Range requests get 206 (or 416 past the end); a missing repo or file is a
// 404. Failure modes: cut a file's transfer halfway (once or always), announce a wrong sha256,
// redirect LFS files to a "CDN" on another origin (as the real hub does).
import { createHash } from 'node:crypto';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HubRequest {
  server: 'hub' | 'cdn';
  url: string;
  headers: IncomingHttpHeaders;
}

export interface HubServerOptions {
  /** repo id → file name → content. */
  repos: Record<string, Record<string, Buffer | string>>;
  /** Cut the first full transfer of this file halfway through, then serve it normally. */
  cutOnce?: string;
  /** Cut every transfer of this file halfway through (including resumed ones). */
  cutAlways?: string;
  /** Announce this sha256 for LFS files instead of the true one. */
  wrongSha256?: string;
  /** Redirect LFS files to a second server (another origin), as the hub does with its CDN. */
  redirectLfs?: boolean;
}

export interface HubServer {
  url: string;
  requests: HubRequest[];
  /** Change failure modes between pulls (e.g. stop cutting transfers). */
  options: HubServerOptions;
  close(): Promise<void>;
}

export const COMMIT = 'a'.repeat(40);

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

const isLfs = (file: string) => /\.(safetensors|gguf|bin)$/.test(file);

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))
  );
}

function sendBody(req: IncomingMessage, res: ServerResponse, body: Buffer, headers: Record<string, string>, cut: boolean): void {
  const size = body.length;
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  let start = 0;
  if (range) {
    start = Number(range[1]);
    if (start >= size) {
      res.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}` });
      res.end();
      return;
    }
    res.writeHead(206, { ...headers, 'Content-Range': `bytes ${start}-${size - 1}/${size}`, 'Content-Length': String(size - start) });
  } else {
    res.writeHead(200, { ...headers, 'Content-Length': String(size) });
  }
  const rest = body.subarray(start);
  if (!cut) {
    res.end(rest);
    return;
  }
  // Send half of what is left, let it reach the client, then drop the connection mid-body.
  res.write(rest.subarray(0, Math.floor(rest.length / 2)), () => setTimeout(() => res.socket?.destroy(), 20));
}

export async function startHubServer(options: HubServerOptions): Promise<HubServer> {
  const requests: HubRequest[] = [];
  const cutDone = new Set<string>();
  const state: HubServerOptions = options;
  const findFile = (repo: string, file: string) => {
    const content = state.repos[repo]?.[file];
    return content === undefined ? undefined : Buffer.from(content);
  };
  const shouldCut = (file: string) => {
    if (state.cutAlways === file) return true;
    if (state.cutOnce === file && !cutDone.has(file)) {
      cutDone.add(file);
      return true;
    }
    return false;
  };
  const notFound = (res: ServerResponse, code: string) => {
    res.writeHead(404, { 'X-Error-Code': code, 'Content-Type': 'text/plain' });
    res.end(`${code}\n`);
  };

  const cdn = http.createServer((req, res) => {
    requests.push({ server: 'cdn', url: req.url ?? '', headers: req.headers });
    const m = /^\/cdn\/([^/]+)\/(.+)$/.exec(req.url ?? '');
    const body = m ? findFile(decodeURIComponent(m[1]!), m[2]!) : undefined;
    if (!m || !body) return notFound(res, 'EntryNotFound');
    // The CDN's own ETag is not the sha256: the client must take it from the hub's X-Linked-Etag.
    sendBody(req, res, body, { ETag: `"cdn-${body.length}"` }, shouldCut(m[2]!));
  });
  const cdnUrl = await listen(cdn);

  const hub = http.createServer((req, res) => {
    requests.push({ server: 'hub', url: req.url ?? '', headers: req.headers });
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(req.url ?? '');
    if (!m) return notFound(res, 'RepoNotFound');
    const [, repo, rev, file] = m as unknown as [string, string, string, string];
    if (!state.repos[repo]) return notFound(res, 'RepoNotFound');
    if (rev !== 'main' && rev !== COMMIT) return notFound(res, 'RevisionNotFound');
    const body = findFile(repo, file);
    if (!body) return notFound(res, 'EntryNotFound');
    const headers: Record<string, string> = { 'X-Repo-Commit': COMMIT };
    if (isLfs(file)) {
      const announced = state.wrongSha256 ?? sha256(body);
      headers['X-Linked-Etag'] = `"${announced}"`;
      headers['X-Linked-Size'] = String(body.length);
      if (state.redirectLfs) {
        res.writeHead(302, { ...headers, Location: `${cdnUrl}/cdn/${encodeURIComponent(repo)}/${file}` });
        res.end();
        return;
      }
      headers.ETag = `"${announced}"`;
    } else {
      // Regular git files: the ETag is the git blob sha1, which a client must not take for a sha256.
      headers.ETag = `"${createHash('sha1').update(body).digest('hex')}"`;
    }
    sendBody(req, res, body, headers, shouldCut(file));
  });
  const url = await listen(hub);

  return {
    url,
    requests,
    options: state,
    async close() {
      hub.closeAllConnections();
      cdn.closeAllConnections();
      await Promise.all([new Promise((r) => hub.close(r)), new Promise((r) => cdn.close(r))]);
    },
  };
}

/** A tiny model in the HF folder layout: the pull code never parses it, only moves and hashes it. */
export function tinyRepo(weightsBytes = 64 * 1024): Record<string, Buffer | string> {
  const weights = Buffer.alloc(weightsBytes);
  for (let i = 0; i < weights.length; i++) weights[i] = (i * 31 + 7) & 0xff;
  return {
    'config.json': JSON.stringify({ architectures: ['LlamaForCausalLM'], hidden_size: 8 }),
    'tokenizer.json': JSON.stringify({ version: '1.0', model: { type: 'BPE', vocab: {}, merges: [] } }),
    'tokenizer_config.json': JSON.stringify({ bos_token: '<s>' }),
    'generation_config.json': JSON.stringify({ max_new_tokens: 16 }),
    'model.safetensors': weights,
  };
}
