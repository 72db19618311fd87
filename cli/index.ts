#!/usr/bin/env node
// The `foremforge` CLI. This file only assembles the commands; each lives in ./commands/<name>.ts
// and exports one commander `Command`.
import { Command, CommanderError } from 'commander';
import { createRequire } from 'node:module';
import { handleError } from './errors.js';

const require = createRequire(import.meta.url);
const pkg = require('../../package.json') as { version: string };

const program = new Command()
  .name('foremforge')
  .description('Fine-tune a small language model on your data and serve it as an INT8 CPU microservice.')
  .version(pkg.version)
  .showSuggestionAfterError()
  .exitOverride();

// Commands (one line each, keep sorted), loaded on demand:
const COMMANDS: Record<string, () => Promise<Command>> = {
  base: async () => (await import('./commands/base.js')).baseCommand,
  chat: async () => (await import('./commands/chat.js')).chatCommand,
  data: async () => (await import('./commands/data.js')).dataCommand,
  demo: async () => (await import('./commands/demo.js')).demoCommand,
  eval: async () => (await import('./commands/eval.js')).evalCommand,
  export: async () => (await import('./commands/export.js')).exportCommand,
  ingest: async () => (await import('./commands/ingest.js')).ingestCommand,
  init: async () => (await import('./commands/init.js')).initCommand,
  models: async () => (await import('./commands/models.js')).modelsCommand,
  predict: async () => (await import('./commands/predict.js')).predictCommand,
  pull: async () => (await import('./commands/pull.js')).pullCommand,
  serve: async () => (await import('./commands/serve.js')).serveCommand,
  train: async () => (await import('./commands/train.js')).trainCommand,
};
// Each command module imports what its command runs on at load (eval, pull, data and train pull in
// 0.2-0.6 s of modules: SQLite, PDF, ...), so only the command named on the command line is
// loaded; all are when none is (help, a typo's suggestion). `serve` is the one started by process
// managers that wait for /ready: it went from ~0.9 s to ~0.2 s of CLI startup on a busy machine.
const named = process.argv[2];
const chosen = named !== undefined && Object.hasOwn(COMMANDS, named) ? [named] : Object.keys(COMMANDS);
for (const name of chosen) program.addCommand(await (COMMANDS[name] as () => Promise<Command>)());

// Sub-commands added with addCommand do not inherit exitOverride; without it a usage error would
// exit 1 instead of 2.
const withOverride = (cmd: Command): void => {
  cmd.exitOverride();
  cmd.commands.forEach(withOverride);
};
withOverride(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version also arrive here, with exit code 0.
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  handleError(err);
}
