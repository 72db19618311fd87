#!/usr/bin/env node
// The `foremforge` CLI. This file only assembles the commands; each lives in ./commands/<name>.ts
// and exports one commander `Command`.
import { Command, CommanderError } from 'commander';
import { createRequire } from 'node:module';
import { handleError } from './errors.js';
import { baseCommand } from './commands/base.js';
import { chatCommand } from './commands/chat.js';
import { demoCommand } from './commands/demo.js';
import { evalCommand } from './commands/eval.js';
import { exportCommand } from './commands/export.js';
import { dataCommand } from './commands/data.js';
import { ingestCommand } from './commands/ingest.js';
import { initCommand } from './commands/init.js';
import { modelsCommand } from './commands/models.js';
import { predictCommand } from './commands/predict.js';
import { pullCommand } from './commands/pull.js';
import { serveCommand } from './commands/serve.js';
import { trainCommand } from './commands/train.js';

const require = createRequire(import.meta.url);
const pkg = require('../../package.json') as { version: string };

const program = new Command()
  .name('foremforge')
  .description('Fine-tune a small language model on your data and serve it as an INT8 CPU microservice.')
  .version(pkg.version)
  .showSuggestionAfterError()
  .exitOverride();

// Commands (one line each, keep sorted):
program.addCommand(baseCommand);
program.addCommand(chatCommand);
program.addCommand(dataCommand);
program.addCommand(demoCommand);
program.addCommand(evalCommand);
program.addCommand(exportCommand);
program.addCommand(ingestCommand);
program.addCommand(initCommand);
program.addCommand(modelsCommand);
program.addCommand(predictCommand);
program.addCommand(pullCommand);
program.addCommand(serveCommand);
program.addCommand(trainCommand);

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
