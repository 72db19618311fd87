// `foremforge init`: sets up a project folder: tinyforge.config.json (every key at its default,
// validated against the schema), data/, examples/sample_qna.jsonl (+ its eval set), .tinyforge/
// (the registry's home) and .gitignore entries, then prints the next commands. It never
// overwrites: an existing config is an error; existing samples and .gitignore lines are kept.
import { Command } from 'commander';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { defaultConfig, validateConfigObject } from '../../ts/config/load.js';
import { CONFIG_FILE, HOME_DIR, packageRoot } from '../../ts/config/project.js';
import { ForgeError } from '../../ts/errors.js';

const GITIGNORE_ENTRIES = [`${HOME_DIR}/`, 'runs/', 'exports/', 'node_modules/'];
const SAMPLES = ['examples/sample_qna.jsonl', 'examples/sample_qna.eval.jsonl'];

interface InitFlags {
  yes?: boolean;
  dir?: string;
  base?: string;
  json?: boolean;
}

async function ask(defaults: { base: string; data: string }): Promise<{ base: string; data: string }> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const base = (await rl.question(`Base model [${defaults.base}]: `)).trim() || defaults.base;
    const data = (await rl.question(`Training data [${defaults.data}]: `)).trim() || defaults.data;
    return { base, data };
  } finally {
    rl.close();
  }
}

export const initCommand = new Command('init')
  .description('Set up a TinyForge project: tinyforge.config.json, data/, a sample dataset, .gitignore entries. Never overwrites.')
  .option('-y, --yes', 'do not ask questions; take the defaults')
  .option('--dir <dir>', 'project folder (created if missing)', '.')
  .option('--base <model>', 'base model to write into the config')
  .option('--json', 'print what was created as JSON')
  .action(async (flags: InitFlags) => {
    const dir = path.resolve(flags.dir ?? '.');
    const configPath = path.join(dir, CONFIG_FILE);
    if (existsSync(configPath)) {
      throw new ForgeError('FILE_EXISTS', `${configPath} already exists; init never overwrites it`, {
        suggestion: 'edit the existing file, or delete it and run `foremforge init` again',
      });
    }
    const config = defaultConfig();
    config.data = SAMPLES[0]!;
    if (flags.base) config.base = flags.base;
    if (!flags.yes && process.stdin.isTTY) Object.assign(config, await ask({ base: config.base, data: config.data }));
    const problems = validateConfigObject(config);
    if (problems.length > 0) {
      throw new ForgeError('INVALID_CONFIG', problems.map((p) => `${p.key}: ${p.reason}`).join('; '), { suggestion: 'pass valid values' });
    }

    const created: string[] = [];
    const kept: string[] = [];
    mkdirSync(dir, { recursive: true });
    // 'wx' fails if the file appeared since the check above: still never a clobber.
    writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`, { flag: 'wx' });
    created.push(CONFIG_FILE);
    for (const sub of ['data', HOME_DIR]) {
      if (existsSync(path.join(dir, sub))) kept.push(`${sub}/`);
      else {
        mkdirSync(path.join(dir, sub), { recursive: true });
        created.push(`${sub}/`);
      }
    }
    for (const rel of SAMPLES) {
      const target = path.join(dir, rel);
      if (existsSync(target)) {
        kept.push(rel);
        continue;
      }
      mkdirSync(path.dirname(target), { recursive: true });
      copyFileSync(path.join(packageRoot(), rel), target);
      created.push(rel);
    }
    const gitignore = path.join(dir, '.gitignore');
    const existing = existsSync(gitignore) ? readFileSync(gitignore, 'utf8') : '';
    const present = new Set(existing.split(/\r?\n/).map((l) => l.trim()));
    const missing = GITIGNORE_ENTRIES.filter((e) => !present.has(e) && !present.has(e.replace(/\/$/, '')));
    if (missing.length > 0) {
      const prefix = existing.length > 0 && !existing.endsWith('\n') ? '\n' : '';
      writeFileSync(gitignore, `${existing}${prefix}${existing ? '\n' : ''}# TinyForge\n${missing.join('\n')}\n`);
      created.push(`.gitignore (${missing.join(' ')})`);
    }

    const next = [
      `foremforge data validate ${config.data}`,
      `foremforge pull ${config.base}`,
      `foremforge data stats ${config.data} --base ${config.base}`,
      `foremforge train --data ${config.data} --out runs/first`,
      'foremforge export --model runs/first --out exports/first',
      `foremforge serve --dir exports/first --port ${config.serve.port}`,
    ];
    if (flags.json) {
      process.stdout.write(`${JSON.stringify({ dir, config: configPath, created, kept, next }, null, 2)}\n`);
      return;
    }
    const rel = path.relative(process.cwd(), dir) || '.';
    process.stdout.write(
      `Initialized a TinyForge project in ${rel}\n` +
        created.map((c) => `  created ${c}\n`).join('') +
        kept.map((c) => `  kept    ${c} (already there)\n`).join('') +
        `\nNext (run inside ${rel}; put your own data in data/ and set "data" in ${CONFIG_FILE}):\n` +
        next.map((c) => `  ${c}\n`).join('')
    );
  });
