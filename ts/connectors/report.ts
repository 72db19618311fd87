// The ingest progress line and summary. Progress redraws one stderr line (at most ~10 times a
// second) only on a terminal; logs and pipes get just the summary.
import { type SkippedRecord, describeSource } from './types.js';
import type { WriteStats } from './write.js';

export interface IngestSummary {
  out: string;
  records: number;
  byKind: WriteStats['byKind'];
  bytes: number;
  seconds: number;
  skipped: { total: number; byReason: Array<{ reason: string; count: number; examples: string[] }> };
  ignoredFiles: Array<{ file: string; reason: string }>;
}

export class SkipLog {
  private readonly reasons = new Map<string, { count: number; examples: string[] }>();
  total = 0;

  add(skipped: SkippedRecord): void {
    this.total += 1;
    // Group by the reason's shape: numbers and quoted values vary from row to row.
    const key = skipped.reason
      .replace(/\d+/g, 'N')
      .replace(/\(has: [^)]*\)/, '')
      .slice(0, 120);
    const entry = this.reasons.get(key) ?? { count: 0, examples: [] };
    entry.count += 1;
    if (entry.examples.length < 3) entry.examples.push(`${describeSource(skipped.source)}: ${skipped.reason}`);
    this.reasons.set(key, entry);
  }

  summary(): IngestSummary['skipped'] {
    const byReason = [...this.reasons.entries()]
      .map(([reason, e]) => ({ reason, count: e.count, examples: e.examples }))
      .sort((a, b) => b.count - a.count);
    return { total: this.total, byReason };
  }
}

export function progressLine(out: NodeJS.WriteStream, skips: SkipLog): { update: (s: WriteStats) => void; done: () => void } {
  const tty = out.isTTY === true;
  const started = performance.now();
  let drawnAt = 0;
  let drawn = false;
  return {
    update(stats) {
      if (!tty) return;
      const now = performance.now();
      if (now - drawnAt < 100) return;
      drawnAt = now;
      drawn = true;
      const rate = stats.records / Math.max((now - started) / 1000, 0.001);
      out.write(
        `\ringest: ${stats.records} records (${rate.toFixed(0)}/s), ${skips.total} skipped, ${(stats.bytes / 2 ** 20).toFixed(1)} MB\x1b[K`
      );
    },
    done() {
      if (drawn) out.write('\r\x1b[K');
      drawn = false;
    },
  };
}

export function formatSummary(s: IngestSummary): string {
  const kinds = Object.entries(s.byKind)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  const rate = s.records / Math.max(s.seconds, 0.001);
  const lines = [`wrote ${s.records} records to ${s.out} (${kinds || 'none'}) in ${s.seconds.toFixed(2)} s, ${rate.toFixed(0)} records/s`];
  const kindsPresent = Object.values(s.byKind).filter((n) => n > 0).length;
  if (kindsPresent > 1) {
    lines.push(
      `note: the output mixes record schemas (${kinds}); training takes it, but 'data validate' warns (MIXED_SCHEMA): a set is usually one kind; narrow the source (--include/--exclude) or ingest each kind to its own file`
    );
  }
  if (s.skipped.total > 0) {
    lines.push(`skipped ${s.skipped.total} invalid records:`);
    for (const r of s.skipped.byReason) {
      lines.push(`  ${r.count} × ${r.examples[0] ?? r.reason}`);
      for (const ex of r.examples.slice(1)) lines.push(`      ${ex}`);
    }
  }
  if (s.ignoredFiles.length > 0) {
    lines.push(`ignored ${s.ignoredFiles.length} files:`);
    for (const f of s.ignoredFiles.slice(0, 10)) lines.push(`  ${f.file}: ${f.reason}`);
    if (s.ignoredFiles.length > 10) lines.push(`  ... and ${s.ignoredFiles.length - 10} more`);
  }
  return `${lines.join('\n')}\n`;
}
