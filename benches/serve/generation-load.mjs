// Closed-loop generation load: `clients` concurrent clients, each sending streamed
// POST /v1/completions one after the other (OpenAI SSE, the same body to every server), with
// the server's resident memory sampled meanwhile. Works against our server and llama-server.
import { readFileSync } from 'node:fs';

/** Resident set size of a process in bytes (Linux /proc), or NaN. */
export function rssBytes(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

export const pct = (xs, p) => {
  if (xs.length === 0) return Number.NaN;
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

/** One streamed completion: total latency, time to the first text, generated tokens. */
export async function streamedCompletion(port, { prompt, maxTokens, model }) {
  const started = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}/v1/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      ...(model ? { model } : {}),
      prompt,
      max_tokens: maxTokens,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  if (res.status !== 200) throw new Error(`POST /v1/completions answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
  let ttft;
  let chunks = 0;
  let usageTokens;
  let buf = '';
  const decoder = new TextDecoder();
  for await (const part of res.body) {
    buf += decoder.decode(part, { stream: true });
    let nl = buf.indexOf('\n\n');
    while (nl >= 0) {
      const event = buf.slice(0, nl);
      buf = buf.slice(nl + 2);
      nl = buf.indexOf('\n\n');
      if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
      const data = JSON.parse(event.slice(6));
      if (data.usage?.completion_tokens !== undefined) usageTokens = data.usage.completion_tokens;
      const text = data.choices?.[0]?.text;
      if (typeof text === 'string' && text !== '') {
        chunks++;
        ttft ??= performance.now() - started;
      }
    }
  }
  const ms = performance.now() - started;
  return { ms, ttftMs: ttft ?? ms, tokens: usageTokens ?? chunks };
}

/**
 * `clients` clients send `perClient` requests each, back to back. Returns req/s, latency and
 * TTFT percentiles, aggregate generated tokens/s and the peak RSS of `pid` seen meanwhile.
 */
export async function generationLevel({ port, pid, clients, perClient, prompts, maxTokens, model }) {
  const results = [];
  let peakRss = rssBytes(pid);
  const sampler = setInterval(() => {
    const r = rssBytes(pid);
    if (r > peakRss) peakRss = r;
  }, 50);
  const started = performance.now();
  try {
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        for (let k = 0; k < perClient; k++) {
          const prompt = prompts[(c * perClient + k) % prompts.length];
          results.push(await streamedCompletion(port, { prompt, maxTokens, model }));
        }
      })
    );
  } finally {
    clearInterval(sampler);
  }
  const seconds = (performance.now() - started) / 1000;
  const tokens = results.reduce((s, r) => s + r.tokens, 0);
  return {
    clients,
    requests: results.length,
    seconds,
    reqPerSec: results.length / seconds,
    p50Ms: pct(
      results.map((r) => r.ms),
      50
    ),
    p99Ms: pct(
      results.map((r) => r.ms),
      99
    ),
    p50TtftMs: pct(
      results.map((r) => r.ttftMs),
      50
    ),
    p99TtftMs: pct(
      results.map((r) => r.ttftMs),
      99
    ),
    meanTokens: tokens / results.length,
    tokensPerSec: tokens / seconds,
    peakRssMB: peakRss / 2 ** 20,
  };
}
