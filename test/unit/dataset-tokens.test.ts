// Token statistics with the real default model's tokenizer (SmolLM2-135M-Instruct GGUF) through
// @tinyforge/native: records are formatted with its chat template before counting. Skipped only
// while the native build has no Tokenizer (the binding lands with the foundation issue).
import { createRequire } from 'node:module';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TokenCounter, datasetStats, loadTokenizer, validateFile } from '../../ts/dataset/index.js';
import { ROOT, runCli } from '../helpers/cli.js';
import { smollm2GgufPath } from '../helpers/models.js';
import { tempDir } from '../helpers/tmp.js';

const SAMPLE = path.join(ROOT, 'examples/sample_qna.jsonl');

function nativeHasTokenizer(): boolean {
  try {
    const native = createRequire(import.meta.url)('@tinyforge/native') as { Tokenizer?: { fromGguf?: unknown } };
    return typeof native.Tokenizer?.fromGguf === 'function';
  } catch {
    return false;
  }
}

describe.skipIf(!nativeHasTokenizer())('token statistics with the SmolLM2 tokenizer', () => {
  let gguf: string;
  beforeAll(async () => {
    gguf = await smollm2GgufPath();
  });

  it('formats records with the chat template and counts their tokens', async () => {
    const tokenizer = loadTokenizer(gguf);
    const counter = new TokenCounter(tokenizer);
    const record = { input: 'What is the API rate limit?', output: 'The API allows 600 requests per minute on Pro.' };
    const formatted = counter.format(record);
    expect(counter.usesChatTemplate).toBe(true);
    expect(formatted).toContain('<|im_start|>user\nWhat is the API rate limit?<|im_end|>');
    expect(formatted).toContain('<|im_start|>assistant\nThe API allows 600 requests per minute on Pro.<|im_end|>');
    const n = counter.count(record);
    // The template's markers are single special tokens: the chat costs a handful more than its text.
    const plain = tokenizer.encode(`${record.input}\n${record.output}`).length;
    expect(n).toBeGreaterThan(plain);
    expect(n).toBeLessThan(plain + 40);
  });

  it('datasetStats gives a token histogram over the sample set', async () => {
    const s = await datasetStats(SAMPLE, { tokenizer: loadTokenizer(gguf), maxSeqLen: 64 });
    expect(s.tokens!.chatTemplate).toBe(true);
    expect(s.tokens!.count).toBe(66);
    expect(s.tokens!.histogram.reduce((a, b) => a + b.count, 0)).toBe(66);
    // English text is ~4 characters per token; the template adds a few dozen per record.
    expect(s.tokens!.mean).toBeGreaterThan(s.chars.mean / 6);
    expect(s.tokens!.mean).toBeLessThan(s.chars.mean);
    expect(s.tokens!.overMaxSeqLen).toBeGreaterThan(0);
  });

  it('validate flags records over --max-tokens; the CLI loads --base from a GGUF', async () => {
    const { summary, problems } = await validateFile(SAMPLE, { tokenizer: loadTokenizer(gguf), maxTokens: 50 });
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.every((p) => p.code === 'TOO_LONG' && p.reason.includes('tokens'))).toBe(true);
    expect(summary.usable).toBe(false);
    const ok = await runCli(['data', 'validate', SAMPLE, '--base', gguf, '--max-tokens', '4096']);
    expect(ok.code, ok.stderr).toBe(0);
    const stats = await runCli(['data', 'stats', SAMPLE, '--base', gguf, '--json']);
    expect(stats.code, stats.stderr).toBe(0);
    expect(JSON.parse(stats.stdout).tokens).toMatchObject({ count: 66, chatTemplate: true });
  });
});

describe.skipIf(!nativeHasTokenizer())('token statistics with an HF model folder', () => {
  it('loads tokenizer.json and the chat template from tokenizer_config.json, by folder or file', async () => {
    const native = createRequire(import.meta.url)('@tinyforge/native') as {
      createTinyModel(dir: string): Promise<{ path: string }>;
    };
    const model = await native.createTinyModel(path.join(tempDir(), 'tiny'));
    for (const base of [model.path, path.join(model.path, 'tokenizer.json')]) {
      const tokenizer = loadTokenizer(base);
      const counter = new TokenCounter(tokenizer);
      expect(counter.usesChatTemplate, base).toBe(true);
      const record = {
        messages: [
          { role: 'user', content: 'hello' },
          { role: 'assistant', content: 'hi there' },
        ],
      };
      const formatted = counter.format(record);
      expect(formatted).toContain('hello');
      expect(formatted).toContain('hi there');
      expect(counter.count(record)).toBe(tokenizer.encode(formatted, { addSpecialTokens: false }).length);
    }
    const r = await runCli(['data', 'stats', SAMPLE, '--base', model.path, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).tokens).toMatchObject({ count: 66, chatTemplate: true });
  });
});

describe('loadTokenizer errors', () => {
  it('a missing base, or a folder without tokenizer.json, is coded', () => {
    expect(() => loadTokenizer('/nonexistent/model.gguf')).toThrow(expect.objectContaining({ code: 'MODEL_NOT_FOUND' }));
    expect(() => loadTokenizer(tempDir())).toThrow(
      expect.objectContaining({ code: nativeHasTokenizer() ? 'MODEL_NOT_FOUND' : 'NATIVE_UNAVAILABLE' })
    );
  });
});
