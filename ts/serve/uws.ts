// Loads uWebSockets.js from `@trufflesuite/uws-js-unofficial` (the official build is not on npm).
// The package's own entry silently falls back to a slower Node `http` shim when its binary does
// not match this Node ABI; we load the binary ourselves so the server can report which one runs
// (`transport` in logs and /health) instead of degrading without a word.
// Binaries shipped in 20.30.0-unofficial.0: Node ABI 93, 108 and 115 (Node 16, 18, 20) for
// linux x64/arm64 and darwin; they need glibc >= 2.27 (checked with objdump on Debian 12's 2.36).
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as Uws from '@trufflesuite/uws-js-unofficial';

export type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from '@trufflesuite/uws-js-unofficial';
export type UwsModule = typeof Uws;

const require = createRequire(import.meta.url);
const PACKAGE = '@trufflesuite/uws-js-unofficial';

let loaded: { uws: UwsModule; transport: 'native' | 'fallback' } | undefined;

export function loadUws(): { uws: UwsModule; transport: 'native' | 'fallback' } {
  if (loaded) return loaded;
  // UWS_USE_FALLBACK=1 is the package's own switch; honoured so the shim can be tested here.
  if (process.env.UWS_USE_FALLBACK === '1' || process.env.UWS_USE_FALLBACK?.toLowerCase() === 'true') {
    loaded = { uws: require(PACKAGE) as UwsModule, transport: 'fallback' };
    return loaded;
  }
  const dir = path.dirname(require.resolve(`${PACKAGE}/package.json`));
  const binary = path.join(dir, 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
  try {
    loaded = { uws: require(binary) as UwsModule, transport: 'native' };
  } catch {
    // Same API over Node's http module; correct, only slower. The package prints why.
    loaded = { uws: require(PACKAGE) as UwsModule, transport: 'fallback' };
  }
  return loaded;
}
