// The base model's SHA-256 exactly as training records it (crates/train/src/manifest.rs
// `base_sha256`), so an export of a base and a run on that base point at the same registry row:
// a GGUF file's own digest; for an HF folder, the digest of its sorted `name sha256` lines over
// config.json, the tokenizer files and the *.safetensors weights.
import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { sha256File } from '../registry/files.js';

const HASHED = new Set(['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors.index.json']);

export async function baseSha256(modelPath: string): Promise<string> {
  if (statSync(modelPath).isFile()) return sha256File(modelPath);
  const names = readdirSync(modelPath)
    .filter((n) => n.endsWith('.safetensors') || HASHED.has(n))
    .filter((n) => statSync(path.join(modelPath, n)).isFile())
    // Byte order, as Rust sorts the paths (the names are ASCII in practice).
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  let listing = '';
  for (const n of names) listing += `${n} ${await sha256File(path.join(modelPath, n))}\n`;
  return createHash('sha256').update(listing).digest('hex');
}
