// A download progress bar for the CLI, on stderr. On a terminal it redraws one line per file
// (at most ~10 times a second); elsewhere (CI logs, pipes) it prints one plain line per file.
import type { PullProgress } from './pull.js';

const MB = 1024 * 1024;

function mb(bytes: number): string {
  return `${(bytes / MB).toFixed(1)} MB`;
}

export interface ProgressReporter {
  onProgress: (p: PullProgress) => void;
  /** Ends the current line; call when the pull is over (success or failure). */
  done: () => void;
}

export function createProgressReporter(out: NodeJS.WriteStream = process.stderr): ProgressReporter {
  const tty = out.isTTY === true;
  let file: string | undefined;
  let last: PullProgress | undefined;
  let started = 0;
  let drawnAt = 0;

  const line = (p: PullProgress, final: boolean): string => {
    const secs = Math.max((Date.now() - started) / 1000, 0.001);
    const rate = `${mb(p.received / secs)}/s`;
    if (p.total === undefined || p.total === 0) return `${p.file} ${mb(p.received)} ${rate}`;
    if (final && !tty) return `downloaded ${p.file} (${mb(p.total)})`;
    const frac = Math.min(p.received / p.total, 1);
    const width = 24;
    const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
    return `${p.file} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${mb(p.received)}/${mb(p.total)} ${rate}`;
  };

  const finish = () => {
    if (!last) return;
    if (tty) out.write(`\r${line(last, true)}\x1b[K\n`);
    else out.write(`${line(last, true)}\n`);
    last = undefined;
    file = undefined;
  };

  return {
    onProgress(p) {
      if (p.file !== file) {
        finish();
        file = p.file;
        started = Date.now();
        drawnAt = 0;
      }
      last = p;
      const now = Date.now();
      if (tty && now - drawnAt >= 100) {
        drawnAt = now;
        out.write(`\r${line(p, false)}\x1b[K`);
      }
      if (p.total !== undefined && p.received >= p.total) finish();
    },
    done: finish,
  };
}
