// Where an export may be written and how it lands: checkOut's verdicts and the staging folder's
// commit/discard/stale-cleanup, on real folders.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { StagingFolder, checkOut, removeStaleStaging } from '../../ts/pipeline/export-folder.js';
import { tempDir } from '../helpers/tmp.js';

const codeOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
};

describe('checkOut', () => {
  it('accepts a new or empty folder, refuses a non-empty one unless it is an export and --overwrite', () => {
    const dir = tempDir();
    const src = path.join(dir, 'run');
    mkdirSync(src);
    const check = (out: string, overwrite = false) => checkOut({ out, overwrite, sources: [src] });
    expect(check(path.join(dir, 'new/deeper'))).toBe(path.join(dir, 'new/deeper'));
    mkdirSync(path.join(dir, 'empty'));
    expect(check(path.join(dir, 'empty'))).toBe(path.join(dir, 'empty'));
    const old = path.join(dir, 'old');
    mkdirSync(old);
    writeFileSync(path.join(old, 'tinyforge.json'), JSON.stringify({ kind: 'tinyforge.export' }));
    expect(codeOf(() => check(old))).toBe('FILE_EXISTS');
    expect(check(old, true)).toBe(old);
    writeFileSync(path.join(old, 'tinyforge.json'), JSON.stringify({ kind: 'tinyforge.run' }));
    expect(codeOf(() => check(old, true))).toBe('FILE_EXISTS');
    expect(codeOf(() => check(src, true))).toBe('UNSAFE_PATH');
    expect(codeOf(() => check(path.join(src, 'x')))).toBe('UNSAFE_PATH');
    expect(codeOf(() => check(dir, true))).toBe('UNSAFE_PATH');
    expect(codeOf(() => check('  '))).toBe('INVALID_ARGUMENT');
  });
});

describe('StagingFolder', () => {
  it('commit replaces the folder in place; discard and stale cleanup leave no sibling behind', () => {
    const dir = tempDir();
    const out = path.join(dir, 'svc');
    mkdirSync(out);
    writeFileSync(path.join(out, 'a'), 'old');
    const s = new StagingFolder(out);
    expect(path.dirname(s.dir)).toBe(dir);
    writeFileSync(path.join(s.dir, 'a'), 'new');
    s.commit();
    expect(readFileSync(path.join(out, 'a'), 'utf8')).toBe('new');
    expect(readdirSync(dir)).toEqual(['svc']);

    const d = new StagingFolder(out);
    d.discard();
    d.discard();
    expect(readdirSync(dir)).toEqual(['svc']);

    // A live process's staging folder (ours) is left alone; a dead one's is removed.
    const live = new StagingFolder(out);
    mkdirSync(path.join(dir, '.svc.tmp-999999999-00ff00ff'));
    mkdirSync(path.join(dir, '.other.tmp-999999999-00ff00ff'));
    expect(removeStaleStaging(out)).toEqual([path.join(dir, '.svc.tmp-999999999-00ff00ff')]);
    expect(existsSync(live.dir)).toBe(true);
    expect(existsSync(path.join(dir, '.other.tmp-999999999-00ff00ff'))).toBe(true);
    live.discard();
  });
});
