// Token counts with the base model's own tokenizer: each record is formatted with the model's
// chat template (as training will format it) and encoded. The tokenizer comes from
// @tinyforge/native, loaded lazily so the dataset tools work without the native build.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { ForgeError, hasCode } from '../errors.js';
import { native } from '../native.js';
import { type ChatMessage, type DataRecord, recordMessages } from './record.js';

/** The part of @tinyforge/native's Tokenizer the dataset tools use. */
export interface NativeTokenizer {
  encode(text: string, options?: { addSpecialTokens?: boolean }): Uint32Array | ArrayLike<unknown>;
  applyChatTemplate?(messages: ChatMessage[], options?: { addGenerationPrompt?: boolean }): string;
  /** The template source, null when the tokenizer has none (absent: unknown, try it). */
  readonly chatTemplate?: string | null;
}

interface NativeModule {
  Tokenizer?: { fromFile(path: string): NativeTokenizer; fromGguf(path: string): NativeTokenizer };
}

// Typed by the part used, so a build without a Tokenizer gets a coded error below, not a TypeError.
const nativeModule = (): NativeModule => native();

/**
 * Loads the tokenizer of `base`: a tokenizer.json file, a Hugging Face model folder (its
 * tokenizer.json, with the chat template from tokenizer_config.json), or a GGUF file.
 */
export function loadTokenizer(base: string): NativeTokenizer {
  if (!existsSync(base)) {
    throw new ForgeError('MODEL_NOT_FOUND', `${base} does not exist`, {
      suggestion: 'pass a tokenizer.json, a model folder or a .gguf file (`foremforge pull` prints where a model is)',
    });
  }
  const { Tokenizer } = nativeModule();
  if (!Tokenizer) {
    throw new ForgeError('NATIVE_UNAVAILABLE', 'this build of @tinyforge/native has no Tokenizer', {
      suggestion: 'rebuild with `npm run build:native`',
    });
  }
  let file = base;
  if (statSync(base).isDirectory()) {
    file = path.join(base, 'tokenizer.json');
    if (!existsSync(file)) {
      throw new ForgeError('MODEL_NOT_FOUND', `${base} has no tokenizer.json`, {
        suggestion: 'pass a Hugging Face model folder or a .gguf file',
      });
    }
  }
  try {
    return file.toLowerCase().endsWith('.gguf') ? Tokenizer.fromGguf(file) : Tokenizer.fromFile(file);
  } catch (err) {
    if (hasCode(err)) throw err;
    throw new ForgeError('TOKENIZER_LOAD', `could not load a tokenizer from ${file}: ${(err as Error).message}`, {
      suggestion: 'pass the tokenizer.json of a Hugging Face model, its folder, or a .gguf file',
      cause: err,
    });
  }
}

/**
 * Like loadTokenizer, but `base` may also be a model name (catalog name or HF repo id) that
 * `foremforge pull` has already fetched: it is looked up in the caches, never downloaded here.
 */
export async function loadTokenizerFor(base: string): Promise<NativeTokenizer> {
  if (existsSync(base)) return loadTokenizer(base);
  if (base.startsWith('.') || base.startsWith('/') || /\.(gguf|json)$/i.test(base)) return loadTokenizer(base);
  const { pullModel } = await import('../models/pull.js');
  const pulled = await pullModel(base, { hub: false, pypi: false });
  return loadTokenizer(pulled.path);
}

/**
 * Counts the tokens of records. Pairs and chats go through the chat template when the
 * tokenizer has one; text records, and chats when it has none, are encoded as plain text
 * (messages joined by newlines).
 */
export class TokenCounter {
  private templated: boolean;

  constructor(private readonly tokenizer: NativeTokenizer) {
    this.templated = typeof tokenizer.applyChatTemplate === 'function' && tokenizer.chatTemplate !== null;
  }

  /** True while records are formatted with the model's chat template. */
  get usesChatTemplate(): boolean {
    return this.templated;
  }

  format(record: DataRecord): string {
    const messages = recordMessages(record);
    if (!messages) return (record as { text: string }).text;
    if (this.templated) {
      try {
        return this.tokenizer.applyChatTemplate!(messages, { addGenerationPrompt: false });
      } catch (err) {
        // A tokenizer without a template says so once; other template errors are the record's.
        if (hasCode(err) && err.code.includes('CHAT_TEMPLATE')) this.templated = false;
        else throw err;
      }
    }
    return messages.map((m) => m.content).join('\n');
  }

  /**
   * Tokens of the record as training sees it. A rendered chat template already holds its special
   * tokens, so it is encoded without adding more (as transformers' apply_chat_template does);
   * plain text gets the tokenizer's usual BOS/EOS.
   */
  count(record: DataRecord): number {
    const text = this.format(record);
    const chat = this.templated && !('text' in record);
    return this.tokenizer.encode(text, chat ? { addSpecialTokens: false } : undefined).length;
  }
}
