// `foremforge base create-tiny|info`: make a tiny random Llama model for tests and demos, and show
// the config of any base model (HF folder or GGUF file) without loading its weights.
import { Command } from 'commander';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ForgeError } from '../../ts/errors.js';
import { native } from '../../ts/native.js';
import { optionalNumberFlag } from '../flags.js';

interface CreateTinyFlags {
  out: string;
  layers?: string;
  hidden?: string;
  heads?: string;
  kvHeads?: string;
  intermediate?: string;
  vocab?: string;
  seed?: string;
  text?: string;
  untied?: boolean;
  overwrite?: boolean;
  json?: boolean;
}

// Parsed here rather than by commander so a bad value is a coded error (exit 2), like every other.
const positiveInt = (flag: string, value: string | undefined, min = 1): number | undefined =>
  optionalNumberFlag(flag, value, { integer: true, min, max: 0xffff_ffff });

function checkOut(out: string, overwrite: boolean): void {
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) {
    throw new ForgeError('FILE_EXISTS', `--out ${out} exists and is not a directory`);
  }
  if (readdirSync(out).length > 0 && !overwrite) {
    throw new ForgeError('FILE_EXISTS', `--out ${out} is not empty`, {
      suggestion: 'choose an empty or new directory, or pass --overwrite to replace the model files in it',
    });
  }
}

const createTiny = new Command('create-tiny')
  .description(
    'Create a small random Llama model in the Hugging Face folder format (config.json, model.safetensors, tokenizer.json with a BPE trained on --text, ChatML chat template).'
  )
  .requiredOption('--out <dir>', 'folder to write (must be empty unless --overwrite)')
  .option('--layers <n>', 'decoder layers (default 2)')
  .option('--hidden <n>', 'hidden size (default 64)')
  .option('--heads <n>', 'attention heads (default 4)')
  .option('--kv-heads <n>', 'key/value heads, divides --heads (default 2)')
  .option('--intermediate <n>', 'MLP size (default 2 x hidden)')
  .option('--vocab <n>', 'vocabulary size, at least 259 (default 512)')
  .option('--seed <n>', 'random seed: same seed and options, same files (default 0)')
  .option('--text <file>', 'UTF-8 text to train the tokenizer on (default: a built-in sample)')
  .option('--untied', 'separate lm_head instead of tied input/output embeddings')
  .option('--overwrite', 'write into a non-empty --out')
  .option('--json', 'print the result as JSON')
  .exitOverride()
  .action(async (flags: CreateTinyFlags) => {
    const options = {
      layers: positiveInt('--layers', flags.layers),
      hidden: positiveInt('--hidden', flags.hidden),
      heads: positiveInt('--heads', flags.heads),
      kvHeads: positiveInt('--kv-heads', flags.kvHeads),
      intermediate: positiveInt('--intermediate', flags.intermediate),
      vocabSize: positiveInt('--vocab', flags.vocab, 259),
      seed: positiveInt('--seed', flags.seed, 0),
      tieEmbeddings: !flags.untied,
      trainingText: undefined as string | undefined,
    };
    if (flags.text !== undefined) {
      if (!existsSync(flags.text)) throw new ForgeError('INVALID_ARGUMENT', `--text ${flags.text} does not exist`);
      options.trainingText = readFileSync(flags.text, 'utf8');
    }
    const out = path.resolve(flags.out);
    checkOut(out, flags.overwrite === true);
    const { createTinyModel } = native();
    const made = await createTinyModel(out, options);
    if (flags.json) process.stdout.write(`${JSON.stringify(made, null, 2)}\n`);
    else process.stdout.write(`created tiny model (${made.parameters.toLocaleString('en-US')} parameters)\n  path: ${made.path}\n`);
  });

const info = new Command('info')
  .description('Print the config of a base model (HF folder or .gguf file) without loading its weights.')
  .argument('<path>', 'model folder (with config.json) or .gguf file')
  .option('--json', 'print the config as JSON')
  .exitOverride()
  .action(async (modelPath: string, flags: { json?: boolean }) => {
    const { modelInfo } = native();
    const c = modelInfo(path.resolve(modelPath));
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(c, null, 2)}\n`);
      return;
    }
    const rows: [string, string | number | boolean][] = [
      ['format', c.format],
      ['architecture', c.architecture],
      ['parameters', c.parameters.toLocaleString('en-US')],
      ['layers', c.numHiddenLayers],
      ['hidden size', c.hiddenSize],
      ['intermediate size', c.intermediateSize],
      ['attention heads', `${c.numAttentionHeads} (kv ${c.numKeyValueHeads}, head dim ${c.headDim})`],
      ['vocab size', c.vocabSize],
      ['max positions', c.maxPositionEmbeddings],
      ['rope theta', c.ropeTheta],
      ['rope scaling', c.ropeScaling ?? 'none'],
      ['rms norm eps', c.rmsNormEps],
      ['tied embeddings', c.tieWordEmbeddings],
      ['bos / eos ids', `${c.bosTokenId ?? '-'} / ${c.eosTokenIds.join(',') || '-'}`],
      ['dtype', c.torchDtype ?? '-'],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    process.stdout.write(`${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n`);
  });

export const baseCommand = new Command('base')
  .description('Base models: create a tiny random one for tests, inspect any.')
  .addCommand(createTiny)
  .addCommand(info)
  .exitOverride();
