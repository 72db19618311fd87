// Where tests find the real default model (SmolLM2-135M-Instruct, Q4_1 GGUF).
// TINYFORGE_SMOLLM2_GGUF points at a local copy (.ci/run exports it after pulling, and the Rust
// tests read the same variable through tinyforge-testkit); otherwise the model is pulled through
// the same code path users run (`foremforge pull`), which uses the cache when the file is there.
import { existsSync } from 'node:fs';

export const SMOLLM2_GGUF_SHA256 = 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53';

export async function smollm2GgufPath(): Promise<string> {
  const fromEnv = process.env.TINYFORGE_SMOLLM2_GGUF;
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  const { pullModel } = await import('../../ts/models/pull.js');
  // format 'gguf': where a hub or an HF cache is reachable the default pull is the HF folder.
  const pulled = await pullModel('smollm2-135m-instruct', { format: 'gguf' });
  return pulled.path;
}
