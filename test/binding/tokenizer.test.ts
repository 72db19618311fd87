// The Tokenizer class through the built @tinyforge/native package, against the committed
// references of test/fixtures/tokenizer (made by make_reference.py with Python tokenizers and
// transformers).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@tinyforge/native';
import { describe, expect, it } from 'vitest';
import { codeOf } from '../helpers/errors.js';
import { tempDir } from '../helpers/tmp.js';

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/tokenizer/smollm2');

interface Reference {
  vocab_size: number;
  encodings: { text: string; ids: number[]; decoded: string }[];
  chats: { name: string; messages: { role: string; content: string }[]; add_generation_prompt: boolean; rendered: string }[];
}
const reference = JSON.parse(readFileSync(path.join(fixtures, 'reference.json'), 'utf8')) as Reference;
const tok = Tokenizer.fromFile(path.join(fixtures, 'tokenizer.json'));

describe('Tokenizer (tokenizer.json fixture)', () => {
  it('encodes every reference string to the reference ids', () => {
    for (const e of reference.encodings) {
      expect(Array.from(tok.encode(e.text)), JSON.stringify(e.text)).toEqual(e.ids);
    }
  });

  it('decodes back to the text', () => {
    for (const e of reference.encodings) {
      expect(tok.decode(tok.encode(e.text))).toBe(e.decoded);
      expect(tok.decode(e.ids)).toBe(e.decoded);
    }
    const ids = tok.encode('<|im_start|>user\nhi<|im_end|>');
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('user\nhi');
  });

  it('encodeBatch and encodeBatchAsync equal encode', async () => {
    const texts = reference.encodings.map((e) => e.text);
    const expected = reference.encodings.map((e) => e.ids);
    expect(tok.encodeBatch(texts).map((a) => Array.from(a))).toEqual(expected);
    expect((await tok.encodeBatchAsync(texts)).map((a) => Array.from(a))).toEqual(expected);
    expect(tok.encodeBatch([])).toEqual([]);
  });

  it('gives offsets in UTF-16 units of the input', () => {
    const text = 'héllo 😀 world 42';
    const enc = tok.encodeWithOffsets(text);
    expect(Array.from(enc.ids)).toEqual(Array.from(tok.encode(text)));
    expect(enc.offsets).toHaveLength(enc.ids.length);
    expect(enc.offsets[0][0]).toBe(0);
    expect(enc.offsets.at(-1)?.[1]).toBe(text.length);
    expect(text.slice(enc.offsets[0][0], enc.offsets[0][1])).toBe('h\u00e9llo'.slice(0, enc.offsets[0][1]));
  });

  it('renders the chat template like transformers', () => {
    for (const c of reference.chats) {
      const out = tok.applyChatTemplate(c.messages, { addGenerationPrompt: c.add_generation_prompt });
      expect(out, c.name).toBe(c.rendered);
    }
  });

  it('knows its vocabulary and special tokens', () => {
    expect(tok.vocabSize).toBe(reference.vocab_size);
    expect(tok.bosTokenId).toBe(1);
    expect(tok.eosTokenId).toBe(2);
    expect(tok.tokenToId('<|im_end|>')).toBe(2);
    expect(tok.idToToken(2)).toBe('<|im_end|>');
    expect(tok.tokenToId('no-such-token-xyz')).toBeNull();
    expect(tok.specialTokens).toContain('<|im_start|>');
    expect(tok.chatTemplate).toContain('<|im_start|>');
  });

  it('round-trips through toJson, fromJson and save', () => {
    const again = Tokenizer.fromJson(tok.toJson());
    const file = path.join(tempDir(), 'tokenizer.json');
    tok.save(file);
    const loaded = Tokenizer.fromFile(file);
    for (const e of reference.encodings.slice(0, 10)) {
      expect(Array.from(again.encode(e.text))).toEqual(e.ids);
      expect(Array.from(loaded.encode(e.text))).toEqual(e.ids);
    }
    // No tokenizer_config.json beside it: no chat template.
    expect(codeOf(() => loaded.applyChatTemplate([{ role: 'user', content: 'x' }]))).toBe('CHAT_TEMPLATE_MISSING');
  });

  it('reports errors with stable codes', () => {
    const dir = tempDir();
    expect(codeOf(() => Tokenizer.fromFile(path.join(dir, 'missing.json')))).toBe('TOKENIZER_LOAD');
    writeFileSync(path.join(dir, 'bad.json'), '{"not": "a tokenizer"}');
    expect(codeOf(() => Tokenizer.fromFile(path.join(dir, 'bad.json')))).toBe('TOKENIZER_LOAD');
    expect(codeOf(() => Tokenizer.fromJson('{'))).toBe('TOKENIZER_LOAD');
    writeFileSync(path.join(dir, 'corrupt.gguf'), Buffer.from('GGUF\x03\x00\x00\x00truncated', 'latin1'));
    expect(codeOf(() => Tokenizer.fromGguf(path.join(dir, 'corrupt.gguf')))).toBe('GGUF_INVALID');
    expect(codeOf(() => Tokenizer.fromGguf(path.join(dir, 'missing.gguf')))).toBe('GGUF_INVALID');
    writeFileSync(path.join(dir, 'tokenizer.json'), tok.toJson());
    writeFileSync(
      path.join(dir, 'tokenizer_config.json'),
      JSON.stringify({ chat_template: "{{ raise_exception('no ' + messages[0].role) }}" })
    );
    const raising = Tokenizer.fromFile(path.join(dir, 'tokenizer.json'));
    expect(codeOf(() => raising.applyChatTemplate([{ role: 'tool', content: '' }]))).toBe('CHAT_TEMPLATE');
  });
});
