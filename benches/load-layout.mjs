#!/usr/bin/env node
// Load-time bench of the ONNX file layout: the same export folder with its weights embedded in
// the .onnx vs in onnx/model_quantized.onnx_data (ONNX external data, memory-mapped by ORT).
// Usage: node benches/load-layout.mjs <embedded-folder> <external-folder> [rounds=5]
// Make the embedded twin with Python onnx: onnx.save(onnx.load(ext_model), emb_model).
// Each measurement is a fresh process (`--one`), rounds interleave the layouts; prints medians of
// load wall/CPU ms and VmRSS after load for onnxruntime-node InferenceSession.create(file) and
// TinyForge's native InferenceSession.load(folder) (the serve path; default 8 slots x context,
// and 1 slot x 256 to show the model's own share).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;

if (process.argv[2] === '--one') {
  const [, , , kind, dir] = process.argv;
  let load;
  if (kind === 'ort') {
    const ort = require('onnxruntime-node');
    load = () => ort.InferenceSession.create(`${dir}/onnx/model_quantized.onnx`);
  } else {
    const native = require('../crates/node/index.cjs');
    const opts = kind === 'serve-1x256' ? { slots: 1, contextLen: 256 } : undefined;
    load = () => native.InferenceSession.load(dir, opts);
  }
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const session = await load();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  console.log(JSON.stringify({ wall, cpu: (c.user + c.system) / 1000, rss: rss(), ok: typeof session === 'object' }));
} else {
  const [emb, ext, rounds = '5'] = process.argv.slice(2);
  if (!emb || !ext) throw new Error('usage: node benches/load-layout.mjs <embedded-folder> <external-folder> [rounds]');
  const rows = [];
  for (let i = 0; i < Number(rounds); i++)
    for (const kind of ['ort', 'serve', 'serve-1x256'])
      for (const [layout, dir] of [
        ['embedded', emb],
        ['external', ext],
      ]) {
        const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--one', kind, dir], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`${kind} ${dir}: ${r.stderr}`);
        rows.push({ kind, layout, ...JSON.parse(r.stdout.trim().split('\n').pop()) });
      }
  const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
  for (const kind of ['ort', 'serve', 'serve-1x256'])
    for (const layout of ['embedded', 'external']) {
      const r = rows.filter((x) => x.kind === kind && x.layout === layout);
      const f = (k) => med(r.map((x) => x[k])).toFixed(0);
      console.log(`${kind.padEnd(12)} ${layout.padEnd(9)} wall ${f('wall')} ms  cpu ${f('cpu')} ms  rss ${f('rss')} MB  (n=${r.length})`);
    }
}
