#!/usr/bin/env node
// This folder's inference service: `foremforge serve --dir <this folder>`, run by the same code.
// node_modules/tinyforge is the compiled serve command of the TinyForge build that exported this
// model (packed into vendor/tinyforge.tar, byte for byte), so the flags, defaults, routes and
// error handling are those of `foremforge serve`; this file only points it at this folder.
// `node server.mjs --help` lists the flags.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommanderError } from 'commander';
import { serveCommand } from 'tinyforge/dist/cli/commands/serve.js';
import { handleError } from 'tinyforge/dist/cli/errors.js';

const here = path.dirname(fileURLToPath(import.meta.url));
serveCommand.name('server.mjs');
try {
  // --dir comes first, so one given on the command line still wins.
  await serveCommand.parseAsync(['--dir', here, ...process.argv.slice(2)], { from: 'user' });
} catch (err) {
  // --help arrives here with exit code 0; a usage error exits 2, as in the CLI.
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
  handleError(err);
}
