#!/usr/bin/env node
// `npm run bench` runs every suite; `npm run bench -- tokenizer data` runs the ones named.
// Each suite is its own script, run in its own Node process so one cannot skew another's numbers.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Suite name → script in benches/. Add a line per new suite. */
const SUITES = {
  tokenizer: 'tokenizer.mjs',
  data: 'data.mjs',
  train: 'train.mjs',
  serve: 'serve.mjs',
  export: 'export.mjs',
  agreement: 'greedy-agreement.mjs',
};

// `--flags` go to every suite run (e.g. `npm run bench -- serve --quick`); the rest name suites.
const flags = process.argv.slice(2).filter((a) => a.startsWith('--'));
const asked = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const unknown = asked.filter((name) => !(name in SUITES));
if (unknown.length > 0) {
  console.error(`unknown bench suite: ${unknown.join(', ')}; known: ${Object.keys(SUITES).join(', ')}`);
  process.exit(2);
}
const names = (asked.length > 0 ? asked : Object.keys(SUITES)).filter((name) => {
  const present = existsSync(path.join(HERE, SUITES[name]));
  if (!present) console.log(`skip: bench suite ${name} (${SUITES[name]} not present)`);
  return present;
});

let failed = 0;
for (const name of names) {
  console.log(`\n=== bench: ${name} ===`);
  const r = spawnSync(process.execPath, [path.join(HERE, SUITES[name]), ...flags], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`bench ${name} failed (exit ${r.status ?? r.signal})`);
    failed += 1;
  }
}
process.exit(failed > 0 ? 1 : 0);
