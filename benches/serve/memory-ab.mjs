#!/usr/bin/env node
// Resident memory of `foremforge serve` variants side by side (issue 10: RSS < model file +
// 150 MB): each variant is its own server process on one export folder (same flags, its own
// environment); they take the same streamed /v1/completions load (64 greedy tokens) at 1, 8 and
// 32 closed-loop clients in turn, alternating who goes first. Prints per variant the RSS at
// /ready, the peak RSS and tok/s per level, and where the memory is at the end (anonymous vs
// file-backed by file, from /proc/PID/smaps).
// Usage: node benches/serve/memory-ab.mjs <export dir> <name>[:ENV=v,ENV=v][:--flag=v] ...
//   e.g. memory-ab.mjs /tmp/x/int8 base arena-off:TF_ARENA=0
import { readFileSync } from 'node:fs';
import { generationLevel, rssBytes } from './generation-load.mjs';
import { startOurs, stop } from './servers.mjs';
import { PROSE } from './single-stream.mjs';

const [dir, ...specs] = process.argv.slice(2);
if (!dir || specs.length === 0) throw new Error('usage: memory-ab.mjs <export dir> <name>[:ENV=v,...][:--flag=v] ...');
const threads = Number(process.env.THREADS ?? 2);
const levels = (process.env.LEVELS ?? '1:4,8:2,32:2').split(',').map((l) => l.split(':').map(Number));

const words = PROSE.split(' ').filter(Boolean);
const prompts = Array.from({ length: 64 }, (_, i) => {
  const k = (i * 7) % words.length;
  return `${i + 1}. ${[...words.slice(k), ...words.slice(0, k)].slice(0, 24 + (i % 5) * 8).join(' ')}`;
});

/** Resident MB of `pid` by kind: anonymous, and file-backed per file name. */
export function smapsBreakdown(pid) {
  const out = { anon: 0 };
  let name = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'latin1').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (head) {
      name = head[1] === '0' || head[2].startsWith('[') ? 'anon' : (head[2].split('/').pop() ?? '?');
      continue;
    }
    const m = /^Rss:\s+(\d+) kB/.exec(line);
    if (m) out[name] = (out[name] ?? 0) + Number(m[1]) / 1024;
  }
  return Object.fromEntries(
    Object.entries(out)
      .filter(([, v]) => v >= 1)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => [k, Math.round(v * 10) / 10])
  );
}

const variants = specs.map((spec) => {
  const [name, ...parts] = spec.split(':');
  const env = {};
  const extraArgs = [];
  for (const part of parts) {
    if (part.startsWith('--')) extraArgs.push(...part.split('='));
    else
      for (const kv of part.split(',').filter(Boolean)) {
        const [k, ...v] = kv.split('=');
        env[k] = v.join('=');
      }
  }
  return { name, env, extraArgs };
});

const servers = [];
try {
  for (const v of variants) {
    const s = await startOurs(dir, { threads, maxBatch: 32, env: v.env, extraArgs: v.extraArgs });
    servers.push({ ...v, s, readyMB: rssBytes(s.proc.pid) / 2 ** 20, rows: [] });
  }
  for (const sv of servers) {
    await generationLevel({ port: sv.s.port, pid: sv.s.proc.pid, clients: 1, perClient: 1, prompts, maxTokens: 8 }); // warm-up
    sv.warmMB = rssBytes(sv.s.proc.pid) / 2 ** 20;
  }
  for (const [li, [clients, perClient]] of levels.entries()) {
    const order = li % 2 === 0 ? servers : servers.slice().reverse();
    for (const sv of order) {
      const r = await generationLevel({ port: sv.s.port, pid: sv.s.proc.pid, clients, perClient, prompts, maxTokens: 64 });
      // Idle again: what the burst left resident once the server had a moment to give back.
      await new Promise((res) => setTimeout(res, 1500));
      sv.rows.push({
        clients,
        tokS: r.tokensPerSec,
        peakMB: r.peakRssMB,
        afterMB: rssBytes(sv.s.proc.pid) / 2 ** 20,
        p99TtftMs: r.p99TtftMs,
      });
    }
  }
  for (const sv of servers) {
    const f = (x) => x.toFixed(0);
    console.log(
      `${sv.name.padEnd(14)} ready ${f(sv.readyMB)} MB, warm ${f(sv.warmMB)} | ${sv.rows
        .map((r) => `${r.clients}c: ${r.tokS.toFixed(1)} tok/s peak ${f(r.peakMB)} after ${f(r.afterMB)} (TTFT p99 ${f(r.p99TtftMs)})`)
        .join(' | ')}`
    );
    console.log(`${''.padEnd(14)} smaps: ${JSON.stringify(smapsBreakdown(sv.s.proc.pid))}`);
  }
  console.log(
    JSON.stringify(servers.map(({ name, env, extraArgs, readyMB, warmMB, rows }) => ({ name, env, extraArgs, readyMB, warmMB, rows })))
  );
} finally {
  for (const sv of servers) await stop(sv.s);
}
