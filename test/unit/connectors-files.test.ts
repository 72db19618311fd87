// File connectors over the fixtures in test/fixtures/connectors (made by make-fixtures.mjs, or by
// hand: see that script's header) and files written by the tests.
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type SkippedRecord, type SourceRecord, readCsv, readFiles, readJsonl, readText, toJsonLine } from '../../ts/connectors/index.js';
import { ROOT } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { all, failure } from '../helpers/records.js';

const FIX = path.join(ROOT, 'test/fixtures/connectors');
const fx = (name: string) => path.join(FIX, name);

describe('JSONL', () => {
  it('reads pairs, chats and text with line numbers, skipping blank lines', async () => {
    const records = await all(readJsonl(fx('mixed.jsonl')));
    expect(records.map((r) => r.source)).toEqual([1, 2, 4, 5].map((line) => ({ kind: 'file', path: fx('mixed.jsonl'), line })));
    expect(records[0]).toMatchObject({ input: 'What is TinyForge?' });
    expect(records[1]).toMatchObject({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant' }] });
    expect(records[2]).toMatchObject({ text: 'Plain language-model text.' });
    // prompt/completion is recognised as a pair.
    expect(records[3]).toMatchObject({ input: '2+2?', output: '4' });
  });

  it('fails on the first bad line with INVALID_DATA naming file:line', async () => {
    const err = await failure(readJsonl(fx('bad.jsonl')));
    expect(err.code).toBe('INVALID_DATA');
    expect(err.message).toContain(`${fx('bad.jsonl')}:2`);
  });

  it('collects every bad line with its reason when skipInvalid is set', async () => {
    const skipped: SkippedRecord[] = [];
    const records = await all(readJsonl(fx('bad.jsonl'), { skipInvalid: true, onSkip: (s) => skipped.push(s) }));
    expect(records.map((r) => (r.source as { line: number }).line)).toEqual([1, 4]);
    expect(skipped.map((s) => (s.source as { line: number }).line)).toEqual([2, 3, 5]);
    expect(skipped[0]!.reason).toMatch(/invalid JSON/);
    expect(skipped[1]!.reason).toMatch(/no input\/output/);
    expect(skipped[2]!.reason).toMatch(/role/);
  });

  it('maps custom fields with a column mapping', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'custom.jsonl');
    writeFileSync(file, '{"q":"a?","a":"b","note":1}\n');
    const records = await all(readJsonl(file, { inputCol: 'q', outputCol: 'a' }));
    expect(records).toEqual([{ input: 'a?', output: 'b', source: { kind: 'file', path: file, line: 1 } }]);
  });

  it('streams a large file (200k lines) without reading it whole', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'big.jsonl');
    const line = `${JSON.stringify({ input: 'x'.repeat(200), output: 'y'.repeat(200) })}\n`;
    writeFileSync(file, line.repeat(200_000));
    const before = process.memoryUsage().heapUsed;
    let n = 0;
    let peak = 0;
    for await (const _ of readJsonl(file)) {
      n += 1;
      if (n % 20_000 === 0) peak = Math.max(peak, process.memoryUsage().heapUsed - before);
    }
    expect(n).toBe(200_000);
    // The file is ~83 MB; a streaming reader's heap grows far less than that.
    expect(peak).toBeLessThan(40 * 2 ** 20);
  });
});

describe('JSON arrays', () => {
  it('reads an array with index provenance and question/answer auto-mapping', async () => {
    const records = await all(readFiles(fx('records.json')));
    expect(records).toHaveLength(3);
    expect(records[1]).toMatchObject({ input: 'Capital of Japan?', output: 'Tokyo.', source: { index: 1 } });
    expect(records[2]).toMatchObject({ text: 'Free text in a JSON array.' });
  });

  it('rejects a JSON file that is not an array of records', async () => {
    const file = path.join(tempDir(), 'obj.json');
    writeFileSync(file, '{"a": 1}');
    expect((await failure(readFiles(file))).code).toBe('INVALID_DATA');
  });
});

describe('CSV and TSV', () => {
  it('handles a BOM, CRLF and quoted fields with commas, quotes and newlines', async () => {
    const records = await all(readCsv(fx('qa-bom.csv')));
    expect(records.map((r) => ('input' in r ? r.input : ''))).toEqual([
      'What is the return window?',
      'Do you ship to "remote" areas?',
      'Is gift wrap free?',
    ]);
    expect(records[1]).toMatchObject({ output: 'Yes.\nAllow 2 extra days.' });
    // Line numbers are where each row starts (row 2 spans two lines).
    expect(records.map((r) => (r.source as { line: number }).line)).toEqual([2, 3, 5]);
  });

  it('decodes latin1 when asked, and UTF-16 from its BOM', async () => {
    const latin = await all(readCsv(fx('latin1.csv'), { encoding: 'latin1' }));
    expect(latin[0]).toMatchObject({ input: 'Café au lait?', output: 'Oui, très bon.' });
    expect(latin[1]).toMatchObject({ output: 'Réponse française.' });
    const win = await all(readCsv(fx('latin1.csv'), { encoding: 'windows-1252' }));
    expect(win[1]).toMatchObject({ input: 'Naïve question?' });
    // A byte-order mark wins over a wrong --encoding.
    expect(await all(readCsv(fx('qa-bom.csv'), { encoding: 'latin1' }))).toHaveLength(3);
    const utf16 = await all(readCsv(fx('utf16.csv')));
    expect(utf16).toEqual([{ input: 'Hello?', output: 'Hi — welcome!', source: { kind: 'file', path: fx('utf16.csv'), line: 2 } }]);
  });

  it('reads TSV with prompt/completion columns and maps columns by name', async () => {
    const tsv = await all(readCsv(fx('pairs.tsv')));
    expect(tsv[1]).toMatchObject({ input: 'tab\there', output: 'ok' });
    const text = await all(readCsv(fx('qa-bom.csv'), { textCol: 'answer' }));
    expect(text[0]).toMatchObject({ text: '30 days, from delivery.' });
    const mapped = await all(readCsv(fx('qa-bom.csv'), { inputCol: 'topic', outputCol: 'answer' }));
    expect(mapped[2]).toMatchObject({ input: 'extras', output: 'No.' });
  });

  it('reports a malformed row with its line, or skips it', async () => {
    const file = path.join(tempDir(), 'broken.csv');
    writeFileSync(file, 'input,output\na,b\n"unclosed,c\nd,e\n');
    const err = await failure(readCsv(file));
    expect(err.code).toBe('INVALID_DATA');
    expect(err.message).toMatch(/broken\.csv:\d+/);
    const missing = path.join(tempDir(), 'cols.csv');
    writeFileSync(missing, 'input,output\na,b\nonly-one\nc,d\n');
    const skipped: SkippedRecord[] = [];
    const records = await all(readCsv(missing, { skipInvalid: true, onSkip: (s) => skipped.push(s) }));
    expect(records.map((r) => ('input' in r ? r.input : ''))).toEqual(['a', 'c']);
    expect(skipped).toHaveLength(1);
    expect(skipped[0]!.source).toMatchObject({ line: 3 });
  });

  it('refuses an unknown encoding', async () => {
    expect((await failure(readCsv(fx('qa-bom.csv'), { encoding: 'klingon-8' }))).code).toBe('INVALID_ARGUMENT');
  });
});

describe('TXT and Markdown chunking', () => {
  it('splits Markdown at headings, keeps code fences whole, names sections and start lines', async () => {
    const records = await all(readText(fx('guide.md')));
    expect(records.map((r) => r.source)).toEqual([
      { kind: 'file', path: fx('guide.md'), line: 1, section: 'Getting started' },
      { kind: 'file', path: fx('guide.md'), line: 8, section: 'Training' },
      { kind: 'file', path: fx('guide.md'), line: 18, section: 'Setext heading' },
    ]);
    expect((records[1] as { text: string }).text).toContain('foremforge train --data data.jsonl\n\nforemforge export');
  });

  it('packs paragraphs up to the token budget with a pluggable counter', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'long.txt');
    const paragraphs = Array.from({ length: 10 }, (_, i) => `para ${i} ${'word '.repeat(9)}`.trim());
    writeFileSync(file, paragraphs.join('\n\n'));
    const words = (t: string) => t.split(/\s+/).filter(Boolean).length;
    // 11 words per paragraph, budget 25 → two paragraphs per chunk.
    const records = await all(readText(file, { maxTokens: 25, countTokens: words }));
    expect(records).toHaveLength(5);
    for (const r of records) expect(words((r as { text: string }).text)).toBeLessThanOrEqual(25);
    expect(records.map((r) => (r.source as { line: number }).line)).toEqual([1, 5, 9, 13, 17]);
    // Nothing lost: the chunks hold every word, in order.
    expect(records.map((r) => (r as { text: string }).text).join('\n\n')).toBe(paragraphs.join('\n\n'));
  });

  it('splits one paragraph over the budget at sentences, then words', async () => {
    const file = path.join(tempDir(), 'one.txt');
    const sentence = 'This sentence has exactly seven words.';
    writeFileSync(file, Array(6).fill(sentence).join(' '));
    const words = (t: string) => t.split(/\s+/).filter(Boolean).length;
    const records = await all(readText(file, { maxTokens: 14, countTokens: words }));
    expect(records.map((r) => (r as { text: string }).text)).toEqual(Array(3).fill(`${sentence} ${sentence}`));
    const tiny = await all(readText(file, { maxTokens: 3, countTokens: words }));
    expect(tiny.every((r) => words((r as { text: string }).text) <= 3)).toBe(true);
    expect(tiny.map((r) => (r as { text: string }).text).join(' ')).toBe(Array(6).fill(sentence).join(' '));
  });

  it('reads plain text paragraphs with the default chars/4 estimate', async () => {
    const records = await all(readText(fx('notes.txt'), { maxTokens: 13 }));
    expect(records.map((r) => (r as { text: string }).text)).toEqual([
      'First paragraph of plain notes.\nIt has two lines.',
      'Second paragraph.',
      'Third paragraph after two blank lines.',
    ]);
  });
});

describe('PDF and DOCX', () => {
  it('extracts PDF text per page with page provenance', async () => {
    const records = await all(readFiles(fx('manual.pdf')));
    expect(records).toEqual([
      { text: 'Chapter 1: Setup\nPlug the device into a grounded outlet.', source: { kind: 'file', path: fx('manual.pdf'), page: 1 } },
      { text: 'Chapter 2: Care\nClean the filter every month.', source: { kind: 'file', path: fx('manual.pdf'), page: 2 } },
    ]);
  });

  it('rejects a file that is not a PDF', async () => {
    const file = path.join(tempDir(), 'fake.pdf');
    writeFileSync(file, 'not a pdf');
    expect((await failure(readFiles(file))).code).toBe('INVALID_DATA');
  });

  it('extracts DOCX text in sections named by its headings', async () => {
    const records = await all(readFiles(fx('handbook.docx')));
    expect(records.map((r) => r.source)).toEqual(
      ['Employee Handbook', 'Holidays', 'Expenses'].map((section) => ({ kind: 'file', path: fx('handbook.docx'), section }))
    );
    expect(records[0]).toMatchObject({ text: 'Employee Handbook\n\nWelcome to the team & thanks for joining.' });
    expect(records[1]).toMatchObject({ text: 'Holidays\n\nYou get 25 days of paid leave a year.\n\nBook them two weeks ahead.' });
  });
});

describe('folders', () => {
  it('recurses in sorted order, dispatches by extension, applies include/exclude globs', async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, 'a/deep'), { recursive: true });
    mkdirSync(path.join(dir, '.git'));
    writeFileSync(path.join(dir, 'a/deep/q.jsonl'), '{"input":"i","output":"o"}\n');
    writeFileSync(path.join(dir, 'a/notes.md'), '# T\n\nbody\n');
    writeFileSync(path.join(dir, 'b.csv'), 'text\nrow\n');
    writeFileSync(path.join(dir, 'draft.txt'), 'draft\n');
    writeFileSync(path.join(dir, 'image.png'), 'png');
    writeFileSync(path.join(dir, '.git/config.json'), '[{"text":"never"}]');
    const ignored: string[] = [];
    const records = await all(readFiles(dir, { onIgnoredFile: (f) => ignored.push(path.basename(f)) }));
    expect(records.map((r) => path.relative(dir, (r.source as { path: string }).path))).toEqual([
      'a/deep/q.jsonl',
      'a/notes.md',
      'b.csv',
      'draft.txt',
    ]);
    expect(ignored).toEqual(['image.png']);
    const filtered = await all(readFiles(dir, { include: ['**/*.{jsonl,md,txt}'], exclude: ['draft.*', 'a/deep/**'] }));
    expect(filtered.map((r) => path.relative(dir, (r.source as { path: string }).path))).toEqual(['a/notes.md']);
  });

  it('names a missing path NOT_FOUND and an unknown extension INVALID_ARGUMENT', async () => {
    expect((await failure(readFiles('/nonexistent/tinyforge/data'))).code).toBe('NOT_FOUND');
    expect((await failure(readJsonl('/nonexistent/x.jsonl'))).code).toBe('NOT_FOUND');
    const file = path.join(tempDir(), 'x.xlsx');
    writeFileSync(file, '');
    expect((await failure(readFiles(file))).code).toBe('INVALID_ARGUMENT');
  });
});

describe('serialization', () => {
  it('keeps schema keys at the top level and provenance under _source (or not at all)', () => {
    const record: SourceRecord = { input: 'a', output: 'b', source: { kind: 'file', path: 'x.csv', line: 2 } };
    expect(JSON.parse(toJsonLine(record))).toEqual({ input: 'a', output: 'b', _source: { kind: 'file', path: 'x.csv', line: 2 } });
    expect(JSON.parse(toJsonLine(record, { provenance: false }))).toEqual({ input: 'a', output: 'b' });
  });
});
