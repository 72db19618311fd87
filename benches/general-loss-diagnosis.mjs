#!/usr/bin/env node
// Where a fine-tune's general-text loss goes (issue 11): per-word loss on the held-out prose
// (test/fixtures/heldout/prose.txt), base model vs base + adapter, by prefix differences of the
// candle scorer (`Generator.score` of every word prefix of a paragraph; a word's loss is the
// difference of consecutive summed NLLs). Prints the added loss by word class (paragraph start,
// after a full stop, after a comma, function words) and the 25 words that lost most.
//
//   node benches/general-loss-diagnosis.mjs RUN/adapter [paragraphs=6]
//
// Needs `npm run build` and the SmolLM2 GGUF (TINYFORGE_SMOLLM2_GGUF or the pull cache). On the old
// default (30 facts, 8 epochs, busy 2-core Xeon): +401 nats over 571 words; the 24 words after a
// full stop carried 25% of it (5.5 -> 9.7 nats each: greedy continuations of plain sentences
// stopped at once with end-of-turn), the top 10% of words 58%, 66% of words got worse.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(ROOT, 'package.json'));
const nat = require(path.join(ROOT, 'crates/node/index.cjs'));
const GGUF =
  process.env.TINYFORGE_SMOLLM2_GGUF ??
  path.join(os.homedir(), '.cache/tinyforge/models/smollm2-135m-instruct/gguf/SmolLM2-135M-Instruct.Q4_1.gguf');
const adapter = process.argv[2];
if (!adapter) {
  console.error('usage: node benches/general-loss-diagnosis.mjs RUN/adapter [paragraphs]');
  process.exit(2);
}
const npar = Number(process.argv[3] ?? 6);
const paras = readFileSync(path.join(ROOT, 'test/fixtures/heldout/prose.txt'), 'utf8')
  .split(/\n\s*\n/)
  .map((s) => s.trim())
  .filter(Boolean)
  .slice(0, npar);
const base = await nat.Generator.load(GGUF);
const tuned = await nat.Generator.load(GGUF, { adapter });
const rows = [];
for (const [pi, p] of paras.entries()) {
  const words = p.split(' ');
  const prefixes = [];
  for (let k = 1; k <= words.length; k++) prefixes.push(words.slice(0, k).join(' '));
  const sb = await base.score(prefixes);
  const st = await tuned.score(prefixes);
  for (let k = 1; k < words.length; k++) {
    rows.push({
      p: pi,
      k,
      word: words[k],
      prev: words[k - 1],
      base: sb[k].nll - sb[k - 1].nll,
      tuned: st[k].nll - st[k - 1].nll,
      ntok: sb[k].tokens - sb[k - 1].tokens,
    });
  }
}
const sum = (f) => rows.reduce((s, r) => s + f(r), 0);
const tb = sum((r) => r.base),
  tt = sum((r) => r.tuned);
console.log('words', rows.length, 'base nll', tb.toFixed(1), 'tuned', tt.toFixed(1), 'extra', (tt - tb).toFixed(1));
const cat = (name, pred) => {
  const s = rows.filter(pred);
  const eb = s.reduce((a, r) => a + r.base, 0),
    et = s.reduce((a, r) => a + r.tuned, 0);
  console.log(
    name.padEnd(28),
    'n',
    String(s.length).padStart(4),
    'base/word',
    (eb / s.length).toFixed(2),
    'tuned/word',
    (et / s.length).toFixed(2),
    'share of extra',
    (((et - eb) / (tt - tb)) * 100).toFixed(1) + '%'
  );
};
cat('all', () => true);
cat('first 5 words of paragraph', (r) => r.k <= 5);
cat('after sentence end', (r) => /[.!?]$/.test(r.prev));
cat('after comma', (r) => /,$/.test(r.prev));
cat('word ends with punct', (r) => /[.,!?;:]$/.test(r.word));
cat('capitalised mid-sentence', (r) => /^[A-Z]/.test(r.word) && !/[.!?]$/.test(r.prev));
cat('function words', (r) => /^(the|a|an|of|to|in|and|that|it|was|is|for|on|with|as|by|at)$/i.test(r.word.replace(/[.,]/g, '')));
// distribution of per-word increase
const d = rows.map((r) => r.tuned - r.base).sort((a, b) => b - a);
const top = d.slice(0, Math.ceil(d.length * 0.1)).reduce((a, b) => a + b, 0);
console.log(
  'top 10% of words carry',
  ((top / (tt - tb)) * 100).toFixed(1) + '% of extra; median delta',
  d[Math.floor(d.length / 2)].toFixed(3),
  'frac words worse',
  (d.filter((x) => x > 0).length / d.length).toFixed(2)
);
const worst = rows
  .map((r) => ({ ...r, d: r.tuned - r.base }))
  .sort((a, b) => b.d - a.d)
  .slice(0, 25);
for (const w of worst)
  console.log(w.d.toFixed(2), JSON.stringify(w.prev + ' ' + w.word), 'base', w.base.toFixed(2), 'tuned', w.tuned.toFixed(2));
