// `foremforge base create-tiny` and `foremforge base info` as a user runs them.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json'];

describe('foremforge base create-tiny', () => {
  it('writes an HF model folder that `base info` describes', async () => {
    const out = path.join(tempDir(), 'tiny');
    const text = path.join(tempDir(), 'corpus.txt');
    writeFileSync(text, 'the cat sat on the mat 42 times\n'.repeat(100));
    const r = await runCli([
      'base',
      'create-tiny',
      '--out',
      out,
      '--layers',
      '3',
      '--hidden',
      '32',
      '--heads',
      '4',
      '--kv-heads',
      '1',
      '--vocab',
      '300',
      '--seed',
      '5',
      '--text',
      text,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ path: out });
    for (const f of FILES) expect(existsSync(path.join(out, f)), f).toBe(true);
    const cfg = JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      num_hidden_layers: 3,
      hidden_size: 32,
      num_key_value_heads: 1,
      vocab_size: 300,
    });
    const tok = JSON.parse(readFileSync(path.join(out, 'tokenizer.json'), 'utf8'));
    expect(tok.model.vocab).toHaveProperty('Ġcat'); // learnt from --text
    expect(JSON.parse(readFileSync(path.join(out, 'tokenizer_config.json'), 'utf8')).chat_template).toContain('<|im_start|>');

    const info = await runCli(['base', 'info', out]);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toMatch(/layers\s+3\n/);
    expect(info.stdout).toMatch(/attention heads\s+4 \(kv 1, head dim 8\)/);
    const json = await runCli(['base', 'info', out, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ format: 'hf', numHiddenLayers: 3, vocabSize: 300 });
  });

  it('refuses a non-empty --out unless --overwrite', async () => {
    const out = tempDir();
    writeFileSync(path.join(out, 'keep.txt'), 'x');
    const r = await runCli(['base', 'create-tiny', '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error[FILE_EXISTS]');
    const again = await runCli(['base', 'create-tiny', '--out', out, '--overwrite']);
    expect(again.code, again.stderr).toBe(0);
    expect(existsSync(path.join(out, 'model.safetensors'))).toBe(true);
  });

  it('rejects bad arguments with exit 2 and a code', async () => {
    const out = path.join(tempDir(), 'm');
    for (const args of [
      ['--layers', 'two'],
      ['--vocab', '100'],
      ['--heads', '3'],
      ['--hidden', '-4'],
      ['--text', '/nonexistent.txt'],
    ]) {
      const r = await runCli(['base', 'create-tiny', '--out', out, ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain('error[INVALID_ARGUMENT]');
    }
    expect((await runCli(['base', 'create-tiny'])).code).toBe(2); // --out is required
  });

  it('`base info` on a missing model fails with MODEL_NOT_FOUND', async () => {
    const r = await runCli(['base', 'info', '/nonexistent/model']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error[MODEL_NOT_FOUND]');
  });
});
