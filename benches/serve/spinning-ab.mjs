#!/usr/bin/env node
// ORT spinning on vs off under the serve load (issue 10: choose the default from numbers): two
// `foremforge serve` processes on one export folder, `--spinning on` and `--spinning off`, the
// same streamed /v1/completions load (64 greedy tokens) at 1, 8 and 32 closed-loop clients,
// alternating who goes first in each pass so a busy machine's load drift hits both alike.
// Usage: node benches/serve/spinning-ab.mjs <export dir> [passes=2] [threads=2]
// Prints per level the median tok/s, p99 TTFT and peak RSS of each, and the on/off ratio.
import { generationLevel } from './generation-load.mjs';
import { startOurs, stop } from './servers.mjs';
import { PROSE } from './single-stream.mjs';

const [dir, passesArg = '2', threadsArg = '2'] = process.argv.slice(2);
if (!dir) throw new Error('usage: spinning-ab.mjs <export dir> [passes] [threads]');
const passes = Number(passesArg);
const threads = Number(threadsArg);
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const words = PROSE.split(' ').filter(Boolean);
const prompts = Array.from({ length: 64 }, (_, i) => {
  const k = (i * 7) % words.length;
  return `${i + 1}. ${[...words.slice(k), ...words.slice(0, k)].slice(0, 24 + (i % 5) * 8).join(' ')}`;
});

const servers = {};
try {
  for (const spin of ['on', 'off']) {
    const s = await startOurs(dir, { threads, maxBatch: 32, extraArgs: ['--spinning', spin] });
    servers[spin] = s;
    await generationLevel({ port: s.port, pid: s.proc.pid, clients: 1, perClient: 1, prompts, maxTokens: 8 }); // warm-up
  }
  const rows = [];
  for (const [clients, perClient] of [
    [1, 4],
    [8, 2],
    [32, 1],
  ]) {
    const runs = { on: [], off: [] };
    for (let p = 0; p < passes; p++) {
      const order = p % 2 === 0 ? ['on', 'off'] : ['off', 'on'];
      for (const spin of order) {
        const s = servers[spin];
        runs[spin].push(await generationLevel({ port: s.port, pid: s.proc.pid, clients, perClient, prompts, maxTokens: 64 }));
      }
    }
    const sum = (spin) => ({
      tokS: median(runs[spin].map((r) => r.tokensPerSec)),
      ttftP99: median(runs[spin].map((r) => r.p99TtftMs)),
      rssMB: Math.max(...runs[spin].map((r) => r.peakRssMB)),
    });
    const on = sum('on');
    const off = sum('off');
    rows.push({ clients, on, off, ratio: on.tokS / off.tokS });
    console.log(
      `${String(clients).padStart(2)} clients: spinning on ${on.tokS.toFixed(1)} tok/s (p99 TTFT ${on.ttftP99.toFixed(0)} ms, RSS ${on.rssMB.toFixed(0)} MB) | off ${off.tokS.toFixed(1)} tok/s (p99 TTFT ${off.ttftP99.toFixed(0)} ms, RSS ${off.rssMB.toFixed(0)} MB) | on/off ${(on.tokS / off.tokS).toFixed(2)}x`
    );
  }
  console.log(JSON.stringify({ threads, passes, rows }));
} finally {
  for (const s of Object.values(servers)) await stop(s);
}
