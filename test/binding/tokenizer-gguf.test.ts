// The tokenizer built from the real SmolLM2 GGUF's metadata gives the ids llama.cpp gives for the
// same file (reference-llamacpp.json, made by make_reference_llamacpp.mjs with node-llama-cpp)
// and renders the chat template as transformers does (reference.json).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@tinyforge/native';
import { beforeAll, describe, expect, it } from 'vitest';
import { smollm2GgufPath } from '../helpers/models.js';
import { tempDir } from '../helpers/tmp.js';

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/tokenizer/smollm2');
const readJson = (name: string) => JSON.parse(readFileSync(path.join(fixtures, name), 'utf8'));
const llamacpp = readJson('reference-llamacpp.json') as { encodings: { text: string; ids: number[] }[] };
const transformers = readJson('reference.json') as {
  chats: { name: string; messages: { role: string; content: string }[]; add_generation_prompt: boolean; rendered: string }[];
};

let tok: Tokenizer;

beforeAll(async () => {
  tok = Tokenizer.fromGguf(await smollm2GgufPath());
});

describe('Tokenizer.fromGguf (SmolLM2-135M-Instruct)', () => {
  it('gives the ids llama.cpp gives', () => {
    for (const e of llamacpp.encodings) {
      expect(Array.from(tok.encode(e.text)), JSON.stringify(e.text)).toEqual(e.ids);
    }
  });

  it('renders the chat template from the GGUF like transformers', () => {
    for (const c of transformers.chats) {
      expect(tok.applyChatTemplate(c.messages, { addGenerationPrompt: c.add_generation_prompt }), c.name).toBe(c.rendered);
    }
  });

  it('has SmolLM2 special tokens and saves as an equivalent tokenizer.json', () => {
    expect(tok.vocabSize).toBe(49152);
    expect(tok.bosTokenId).toBe(1);
    expect(tok.eosTokenId).toBe(2);
    const again = Tokenizer.fromJson(tok.toJson());
    const text = llamacpp.encodings.map((e) => e.text).join('\n');
    expect(Array.from(again.encode(text))).toEqual(Array.from(tok.encode(text)));
  });

  it('saves a tokenizer folder that loads back with its chat template', () => {
    const dir = path.join(tempDir(), 'smollm2');
    tok.savePretrained(dir);
    const folder = Tokenizer.fromFile(dir);
    expect(folder.eosTokenId).toBe(2);
    const c = transformers.chats[0];
    expect(folder.applyChatTemplate(c.messages, { addGenerationPrompt: c.add_generation_prompt })).toBe(c.rendered);
    expect(Array.from(folder.encode(llamacpp.encodings[5].text))).toEqual(llamacpp.encodings[5].ids);
  });
});
