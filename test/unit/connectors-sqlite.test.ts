// SQLite connector against real database files made by the test.
import { existsSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { beforeEach, describe, expect, it } from 'vitest';
import { type SkippedRecord, readSqlite } from '../../ts/connectors/index.js';
import { tempDir } from '../helpers/tmp.js';
import { all, failure } from '../helpers/records.js';

let file: string;

beforeEach(() => {
  file = path.join(tempDir(), 'support.db');
  const db = new Database(file);
  db.exec(`
    CREATE TABLE faq (id INTEGER PRIMARY KEY, question TEXT, answer TEXT, lang TEXT);
    CREATE TABLE notes (body TEXT);
    CREATE TABLE chats (conv TEXT PRIMARY KEY, messages TEXT) WITHOUT ROWID;
  `);
  const insert = db.prepare('INSERT INTO faq (id, question, answer, lang) VALUES (?, ?, ?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= 10_000; i++) insert.run(i, `question ${i}?`, i === 7 ? null : `answer ${i}`, i % 2 ? 'en' : 'de');
  })();
  db.prepare('INSERT INTO notes (body) VALUES (?), (?)').run('first note', 'second note');
  db.prepare('INSERT INTO chats VALUES (?, ?)').run(
    'c1',
    JSON.stringify([
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hello' },
    ])
  );
  db.close();
});

describe('SQLite connector', () => {
  it('reads a table with column mapping, keyed by its primary key; a NULL answer is INVALID_DATA or skipped', async () => {
    const err = await failure(readSqlite(file, { table: 'faq', inputCol: 'question', outputCol: 'answer' }));
    expect(err.code).toBe('INVALID_DATA');
    expect(err.message).toContain('key=7');
    const skipped: SkippedRecord[] = [];
    const records = await all(
      readSqlite(file, { table: 'faq', inputCol: 'question', outputCol: 'answer', skipInvalid: true, onSkip: (s) => skipped.push(s) })
    );
    expect(records).toHaveLength(9_999);
    expect(records[0]).toEqual({ input: 'question 1?', output: 'answer 1', source: { kind: 'sqlite', path: file, table: 'faq', key: 1 } });
    expect(skipped).toEqual([{ source: { kind: 'sqlite', path: file, table: 'faq', key: 7 }, reason: 'field "answer" is missing' }]);
  });

  it('keys a table without a primary key by rowid, and auto-detects a text column', async () => {
    const records = await all(readSqlite(file, { table: 'notes' }));
    expect(records).toEqual([
      { text: 'first note', source: { kind: 'sqlite', path: file, table: 'notes', key: 1 } },
      { text: 'second note', source: { kind: 'sqlite', path: file, table: 'notes', key: 2 } },
    ]);
  });

  it('reads chats from a JSON column of a WITHOUT ROWID table', async () => {
    const records = await all(readSqlite(file, { table: 'chats' }));
    expect(records).toEqual([
      {
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'hello' },
        ],
        source: { kind: 'sqlite', path: file, table: 'chats', key: 'c1' },
      },
    ]);
  });

  it('runs a query with named and positional parameters', async () => {
    const named = await all(
      readSqlite(file, {
        query: 'SELECT id, question AS input, answer AS output FROM faq WHERE lang = :lang AND id <= :max ORDER BY id',
        namedParams: { lang: 'de', max: 6 },
        keyCol: 'id',
      })
    );
    expect(named.map((r) => r.source)).toEqual(
      [2, 4, 6].map((key) => ({ kind: 'sqlite', path: file, query: expect.stringContaining('SELECT'), key }))
    );
    expect(named[0]).toMatchObject({ input: 'question 2?', output: 'answer 2' });
    const positional = await all(
      readSqlite(file, { query: 'SELECT question AS prompt, answer AS completion FROM faq WHERE id IN (?, ?)', params: [3, 5] })
    );
    expect(positional.map((r) => r.source)).toMatchObject([{ key: 1 }, { key: 2 }]);
    expect(positional[1]).toMatchObject({ input: 'question 5?' });
  });

  it('is read-only: a writing statement fails and changes nothing', async () => {
    const err = await failure(readSqlite(file, { query: 'DELETE FROM faq RETURNING question AS text' }));
    expect(err.code).toBe('DB_ERROR');
    expect(err.message).toMatch(/readonly|read-only/i);
    const plain = await failure(readSqlite(file, { query: 'DELETE FROM faq' }));
    expect(plain.code).toBe('INVALID_ARGUMENT');
    const db = new Database(file, { readonly: true });
    expect(db.prepare('SELECT count(*) AS n FROM faq').get()).toEqual({ n: 10_000 });
    db.close();
  });

  it('streams: a consumer can stop early, and the database is closed cleanly', async () => {
    let n = 0;
    for await (const _ of readSqlite(file, { table: 'faq', skipInvalid: true })) {
      if (++n === 3) break;
    }
    expect(n).toBe(3);
    // The file is not locked afterwards: a writer can open it.
    const db = new Database(file);
    db.prepare('DELETE FROM notes').run();
    db.close();
  });

  it('never creates a missing database and names bad tables and SQL', async () => {
    const missing = path.join(tempDir(), 'nope.db');
    expect((await failure(readSqlite(missing, { table: 'faq' }))).code).toBe('NOT_FOUND');
    expect(existsSync(missing)).toBe(false);
    expect((await failure(readSqlite(file, { table: 'nope' }))).code).toBe('NOT_FOUND');
    expect((await failure(readSqlite(file, { query: 'SELEC oops' }))).code).toBe('DB_ERROR');
    expect((await failure(readSqlite(file, {}))).code).toBe('INVALID_ARGUMENT');
    expect((await failure(readSqlite(file, { table: 'faq"; DROP TABLE faq; --' }))).code).toBe('NOT_FOUND');
  });
});
