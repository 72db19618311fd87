// `import { X } from '@tinyforge/native'` must work in plain Node ESM (not only under vitest's
// transform) for every export of the CommonJS entry.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/cli.js';

const require = createRequire(import.meta.url);

describe('@tinyforge/native ESM entry', () => {
  it('re-exports every public export of the CommonJS entry', () => {
    const cjsNames = Object.keys(require('@tinyforge/native') as object)
      .filter((name) => !name.startsWith('__') && !name.startsWith('Js'))
      .sort();
    const script =
      "const m = await import('@tinyforge/native'); console.log(JSON.stringify(Object.keys(m).filter((k) => k !== 'default').sort()));";
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    const esmNames = JSON.parse(out) as string[];
    expect(esmNames).toEqual(cjsNames);
  });

  it('gives ESM callers coded errors too', async () => {
    const script =
      "import { Tokenizer } from '@tinyforge/native'; try { Tokenizer.fromFile('/nonexistent/tokenizer.json'); } catch (e) { console.log(e.code); }";
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    expect(out.trim()).toBe('TOKENIZER_LOAD');
  });
});
