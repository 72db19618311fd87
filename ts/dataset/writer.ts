// Writes lines to a file through a temp file renamed into place on success, so an interrupted
// split or dedup never leaves a half-written output that looks finished. Honors backpressure.
import { createWriteStream, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { ForgeError } from '../errors.js';

export class LineWriter {
  private readonly stream: WriteStream;
  private readonly tmp: string;
  lines = 0;

  constructor(readonly file: string) {
    this.tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
    this.stream = createWriteStream(this.tmp);
  }

  async write(lines: string[]): Promise<void> {
    if (lines.length === 0) return;
    this.lines += lines.length;
    if (!this.stream.write(`${lines.join('\n')}\n`)) await once(this.stream, 'drain');
  }

  async close(): Promise<void> {
    this.stream.end();
    await once(this.stream, 'finish');
    await rename(this.tmp, this.file);
  }

  async abort(): Promise<void> {
    this.stream.destroy();
    await rm(this.tmp, { force: true });
  }
}

/** Rejects an output path equal to an input path (reading and replacing the same file). */
export function assertDistinct(input: string, ...outputs: string[]): void {
  const seen = new Set([path.resolve(input)]);
  for (const out of outputs) {
    const abs = path.resolve(out);
    if (seen.has(abs)) {
      throw new ForgeError('INVALID_ARGUMENT', `output ${out} is the same file as another input or output`, {
        suggestion: 'write to a new file',
      });
    }
    seen.add(abs);
  }
}
