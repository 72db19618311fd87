// A POSIX ustar archive in the layout `npm pack` makes (every path under `package/`), so npm
// installs it from a `file:` dependency. Uncompressed: npm reads a plain .tar as well as a .tgz,
// and gzip cost 0.8 s per export for the 19 MB native addon (level 1, 2-core Xeon, busy) to save
// 12 MB in a folder that already holds the model. Deterministic: fixed owner and mtime (npm's
// own 1985-10-26), so the same files give the same bytes.
import { ForgeError } from '../errors.js';

export interface TarEntry {
  /** Path inside the archive, '/'-separated, relative. */
  path: string;
  data: Buffer;
  /** Keeps the executable bit of the source file. */
  executable?: boolean;
}

const BLOCK = 512;
const MTIME = Date.UTC(1985, 9, 26, 8, 15, 0) / 1000;

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

/** ustar keeps 100 bytes of name plus a 155-byte prefix, split at a '/'. */
function splitName(p: string): { name: string; prefix: string } {
  if (Buffer.byteLength(p) <= 100) return { name: p, prefix: '' };
  for (let i = p.indexOf('/'); i !== -1; i = p.indexOf('/', i + 1)) {
    const prefix = p.slice(0, i);
    const name = p.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return { name, prefix };
  }
  throw new ForgeError('INVALID_ARGUMENT', `tar: path too long for ustar: ${p}`);
}

function header(entry: TarEntry): Buffer {
  const h = Buffer.alloc(BLOCK);
  const { name, prefix } = splitName(entry.path);
  h.write(name, 0, 100);
  h.write(octal(entry.executable ? 0o755 : 0o644, 8), 100);
  h.write(octal(0, 8), 108);
  h.write(octal(0, 8), 116);
  h.write(octal(entry.data.length, 12), 124);
  h.write(octal(MTIME, 12), 136);
  h.write('        ', 148); // the checksum is computed with its own field as spaces
  h.write('0', 156);
  h.write('ustar\u000000', 257);
  h.write(prefix, 345, 155);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

/** The archive of `entries`, in the order given. */
export function tarball(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(header(e), e.data);
    const pad = (BLOCK - (e.data.length % BLOCK)) % BLOCK;
    if (pad > 0) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}
