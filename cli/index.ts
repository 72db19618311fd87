#!/usr/bin/env node
// The `foremforge` CLI: this file only assembles the commands (one file each in ./commands).
import { Command } from 'commander';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const pkg = require('../../package.json') as { version: string };

const program = new Command()
  .name('foremforge')
  .description('Fine-tune a small language model on your data and serve it as an INT8 CPU microservice.')
  .version(pkg.version);

await program.parseAsync(process.argv);
