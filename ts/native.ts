// The one way the TypeScript layer reaches the Rust core. `native()` loads @tinyforge/native on
// first use, so the CLI starts without it and the dataset and registry tools run without the
// native build; it loads through `require` because index.cjs builds its exports in a loop (to
// attach error codes), which ESM named imports cannot see; and a missing or broken build becomes
// a coded error instead of a module-resolution stack trace. Types come from
// `import type { ... } from '@tinyforge/native'`, which emits no code.
import { createRequire } from 'node:module';
import { ForgeError } from './errors.js';

export type Native = typeof import('@tinyforge/native');

let loaded: Native | undefined;

/** The native module, loaded once. Throws `NATIVE_UNAVAILABLE` when it cannot be loaded. */
export function native(): Native {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('@tinyforge/native') as Native;
    } catch (err) {
      throw new ForgeError('NATIVE_UNAVAILABLE', `the native core could not be loaded: ${(err as Error).message}`, {
        suggestion: 'build it with `npm run build:native`',
        cause: err,
      });
    }
  }
  return loaded;
}

/**
 * The ONNX Runtime session config entries TinyForge's own sessions set on this CPU (see the
 * binding's `ortSessionConfig`), nested by their dots as onnxruntime-node's `extra` session
 * option takes them: pass as transformers.js `session_options: { extra }` so another runtime
 * computes the int8 export as ours does (`{ session: { x64quantprecision: '1' } }` on x86 CPUs
 * without VNNI, `{}` elsewhere).
 */
export function ortExtraSessionOptions(): Record<string, Record<string, string>> {
  const extra: Record<string, Record<string, string>> = {};
  for (const [key, value] of Object.entries(native().ortSessionConfig())) {
    const dot = key.indexOf('.');
    const group = key.slice(0, dot);
    extra[group] = { ...extra[group], [key.slice(dot + 1)]: value };
  }
  return extra;
}
