// The CLI's download progress output when stderr is not a terminal: one plain line per file.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createProgressReporter } from '../../ts/models/progress.js';

function sink(isTTY: boolean): { out: NodeJS.WriteStream; text: () => string } {
  let text = '';
  const out = new Writable({
    write(chunk, _enc, done) {
      text += chunk.toString();
      done();
    },
  }) as unknown as NodeJS.WriteStream;
  (out as { isTTY: boolean }).isTTY = isTTY;
  return { out, text: () => text };
}

describe('createProgressReporter', () => {
  it('prints one final line per file when not a terminal', () => {
    const { out, text } = sink(false);
    const r = createProgressReporter(out);
    r.onProgress({ file: 'config.json', received: 0, total: 10 });
    r.onProgress({ file: 'config.json', received: 10, total: 10 });
    r.onProgress({ file: 'model.safetensors', received: 0, total: 2 * 1024 * 1024 });
    r.onProgress({ file: 'model.safetensors', received: 1024 * 1024, total: 2 * 1024 * 1024 });
    r.onProgress({ file: 'model.safetensors', received: 2 * 1024 * 1024, total: 2 * 1024 * 1024 });
    r.done();
    expect(text()).toBe('downloaded config.json (0.0 MB)\ndownloaded model.safetensors (2.0 MB)\n');
  });

  it('draws a bar on a terminal and ends the line when the file is done', () => {
    const { out, text } = sink(true);
    const r = createProgressReporter(out);
    r.onProgress({ file: 'model.safetensors', received: 512, total: 1024 });
    r.onProgress({ file: 'model.safetensors', received: 1024, total: 1024 });
    r.done();
    expect(text()).toContain('\rmodel.safetensors [############............]  50%');
    expect(text()).toMatch(/100% .*\n$/);
  });
});
