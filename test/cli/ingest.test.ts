// `foremforge ingest` end to end: the built CLI in a child process, real files, a real SQLite file,
// the real PostgreSQL test server, and Google Docs in mock mode.
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../helpers/cli.js';
import { type GDocsServer, startGDocsServer } from '../helpers/gdocs-server.js';
import { type TestPostgres, sql, testPostgres } from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';

const FIX = path.join(ROOT, 'test/fixtures/connectors');
const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('foremforge ingest --from file', () => {
  it('ingests a folder with globs into JSONL with _source provenance and prints a summary', async () => {
    const out = path.join(tempDir(), 'out/data.jsonl');
    const r = await runCli([
      'ingest',
      '--from',
      'file',
      '--path',
      FIX,
      '--include',
      '**/*.{jsonl,csv,md,pdf,docx}',
      '--exclude',
      'bad.*',
      '--exclude',
      'latin1.csv',
      '--exclude',
      'gdocs-mock/**',
      '--out',
      out,
    ]);
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
    const records = lines(out);
    // mixed.jsonl 4, qa-bom.csv 3, utf16.csv 1, guide.md 3, manual.pdf 2, handbook.docx 3
    expect(records).toHaveLength(16);
    expect(records.find((x) => x.input === 'Hello?')).toMatchObject({
      _source: { kind: 'file', path: path.join(FIX, 'utf16.csv'), line: 2 },
    });
    expect(records.find((x) => (x._source as { page?: number }).page === 2)).toMatchObject({
      text: expect.stringContaining('Clean the filter'),
    });
    expect(r.stdout).toMatch(/wrote 16 records to .*data\.jsonl \(pair 6, chat 1, text 9\)/);
    // The temporary file was renamed away.
    expect(readdirSync(path.dirname(out))).toEqual(['data.jsonl']);
  });

  it('fails on bad data with INVALID_DATA at file:line, exit 2, keeping the previous output', async () => {
    const out = path.join(tempDir(), 'data.jsonl');
    writeFileSync(out, '{"text":"previous good set"}\n');
    const r = await runCli(['ingest', '--from', 'file', '--path', path.join(FIX, 'bad.jsonl'), '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('error[INVALID_DATA]');
    expect(r.stderr).toContain('bad.jsonl:2');
    expect(r.stderr).toContain('hint:');
    expect(readFileSync(out, 'utf8')).toBe('{"text":"previous good set"}\n');
    expect(readdirSync(path.dirname(out))).toEqual(['data.jsonl']);
  });

  it('--skip-invalid writes the good records and lists skipped ones with reasons; --json summary; --no-provenance', async () => {
    const out = path.join(tempDir(), 'data.jsonl');
    const r = await runCli([
      'ingest',
      '--from',
      'file',
      '--path',
      path.join(FIX, 'bad.jsonl'),
      '--out',
      out,
      '--skip-invalid',
      '--no-provenance',
      '--json',
    ]);
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout) as {
      records: number;
      skipped: { total: number; byReason: Array<{ examples: string[] }> };
      byKind: Record<string, number>;
    };
    expect(summary.records).toBe(2);
    expect(summary.byKind).toEqual({ pair: 2, chat: 0, text: 0 });
    expect(summary.skipped.total).toBe(3);
    expect(summary.skipped.byReason.flatMap((b) => b.examples).join('\n')).toMatch(/bad\.jsonl:2: invalid JSON/);
    expect(lines(out)).toEqual([
      { input: 'ok', output: 'fine' },
      { input: 'ok again', output: 'fine' },
    ]);
    const human = await runCli(['ingest', '--from', 'file', '--path', path.join(FIX, 'bad.jsonl'), '--out', out, '--skip-invalid']);
    expect(human.stdout).toMatch(/skipped 3 invalid records/);
    expect(human.stdout).toContain('bad.jsonl:3');
  });

  it('maps CSV columns and decodes latin1 from flags', async () => {
    const out = path.join(tempDir(), 'data.jsonl');
    const r = await runCli([
      'ingest',
      '--from',
      'file',
      '--path',
      path.join(FIX, 'latin1.csv'),
      '--encoding',
      'latin1',
      '--input-col',
      'output',
      '--output-col',
      'input',
      '--out',
      out,
    ]);
    expect(r.code).toBe(0);
    expect(lines(out)[0]).toMatchObject({ input: 'Oui, très bon.', output: 'Café au lait?' });
  });

  it('exits 1 with NOT_FOUND for a missing path, 2 for bad usage, and writes nothing for an empty source', async () => {
    const dir = tempDir();
    const missing = await runCli(['ingest', '--from', 'file', '--path', path.join(dir, 'nope'), '--out', path.join(dir, 'o.jsonl')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('error[NOT_FOUND]');
    expect((await runCli(['ingest', '--path', FIX, '--out', 'x.jsonl'])).code).toBe(2);
    expect((await runCli(['ingest', '--from', 'ftp', '--out', 'x.jsonl'])).code).toBe(2);
    expect((await runCli(['ingest', '--from', 'file', '--out', path.join(dir, 'o.jsonl')])).code).toBe(2);
    mkdirSync(path.join(dir, 'empty'));
    const empty = await runCli(['ingest', '--from', 'file', '--path', path.join(dir, 'empty'), '--out', path.join(dir, 'o.jsonl')]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('no records');
    expect(existsSync(path.join(dir, 'o.jsonl'))).toBe(false);
  });
});

describe('foremforge ingest --from sqlite / gdocs', () => {
  it('reads a SQLite query with a named parameter', async () => {
    const dir = tempDir();
    const db = new Database(path.join(dir, 'kb.db'));
    db.exec(
      "CREATE TABLE kb (id INTEGER PRIMARY KEY, q TEXT, a TEXT, lang TEXT); INSERT INTO kb VALUES (1,'hi?','hello','en'),(2,'hallo?','servus','de')"
    );
    db.close();
    const out = path.join(dir, 'data.jsonl');
    const r = await runCli([
      'ingest',
      '--from',
      'sqlite',
      '--db',
      path.join(dir, 'kb.db'),
      '--query',
      'SELECT id, q, a FROM kb WHERE lang = :lang',
      '--param',
      'lang=de',
      '--input-col',
      'q',
      '--output-col',
      'a',
      '--key-col',
      'id',
      '--out',
      out,
    ]);
    expect(r.code).toBe(0);
    expect(lines(out)).toEqual([
      {
        input: 'hallo?',
        output: 'servus',
        _source: { kind: 'sqlite', path: path.join(dir, 'kb.db'), query: 'SELECT id, q, a FROM kb WHERE lang = :lang', key: 2 },
      },
    ]);
  });

  it('reads Google Docs offline from recorded responses (--mock)', async () => {
    const out = path.join(tempDir(), 'docs.jsonl');
    const r = await runCli(
      ['ingest', '--from', 'gdocs', '--mock', path.join(FIX, 'gdocs-mock'), '--folder', '0TeamFolderQwe', '--out', out],
      {
        env: { GOOGLE_OAUTH_TOKEN: '', GOOGLE_APPLICATION_CREDENTIALS: '' },
      }
    );
    expect(r.code).toBe(0);
    expect(lines(out).map((x) => (x._source as { documentId: string }).documentId)).toEqual([
      '1FaqDocAbc123',
      '1FaqDocAbc123',
      '1PolicyDocXyz789',
      '1NotesDoc456',
    ]);
    const missing = await runCli(['ingest', '--from', 'gdocs', '--mock', path.join(FIX, 'gdocs-mock'), '--doc', '1Nope', '--out', out]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('error[NOT_FOUND]');
  });
});

describe('foremforge ingest --from gdocs (live client against a local API server)', () => {
  let server: GDocsServer;
  const token = 'ya29.cli-test-token-abcdef';

  beforeAll(async () => {
    const doc = JSON.parse(readFileSync(path.join(FIX, 'gdocs-mock/documents/1NotesDoc456.json'), 'utf8')) as unknown;
    server = await startGDocsServer({ documents: { '1NotesDoc456': doc }, tokens: [token] });
  });

  afterAll(() => server.close());

  it('reads with GOOGLE_OAUTH_TOKEN and base URLs from env; a rejected token is never printed', async () => {
    const out = path.join(tempDir(), 'docs.jsonl');
    const env = { TINYFORGE_GDOCS_DOCS_URL: server.url, TINYFORGE_GDOCS_DRIVE_URL: server.url, GOOGLE_OAUTH_TOKEN: token };
    const ok = await runCli(['ingest', '--from', 'gdocs', '--doc', '1NotesDoc456', '--out', out], { env });
    expect(ok.code).toBe(0);
    expect(lines(out)).toEqual([
      { text: 'Version 1.2 adds offline mode.', _source: { kind: 'gdocs', documentId: '1NotesDoc456', title: 'Release notes' } },
    ]);
    expect(readFileSync(out, 'utf8')).not.toContain(token);
    const bad = await runCli(['ingest', '--from', 'gdocs', '--doc', '1NotesDoc456', '--out', out], {
      env: { ...env, GOOGLE_OAUTH_TOKEN: 'ya29.revoked-token-999' },
    });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('error[GDOCS_UNAUTHORIZED]');
    expect(bad.stdout + bad.stderr).not.toContain('revoked-token');
  });
});

describe('foremforge ingest --from postgres', () => {
  let pg: TestPostgres;
  const T = `cli_faq_${process.pid}`;

  beforeAll(async () => {
    pg = testPostgres();
    await sql(
      pg.url,
      `DROP TABLE IF EXISTS ${T}; CREATE TABLE ${T} (id int PRIMARY KEY, question text, answer text);
      INSERT INTO ${T} SELECT g, 'q' || g, 'a' || g FROM generate_series(1, 2500) g`
    );
  });

  afterAll(async () => {
    await sql(pg.url, `DROP TABLE IF EXISTS ${T}`).catch(() => {});
    pg.stop();
  });

  it('streams a table with --url and never prints the password', async () => {
    const out = path.join(tempDir(), 'pg.jsonl');
    const password = decodeURIComponent(new URL(pg.url).password);
    const r = await runCli([
      'ingest',
      '--from',
      'postgres',
      '--url',
      pg.url,
      '--table',
      T,
      '--input-col',
      'question',
      '--output-col',
      'answer',
      '--fetch-size',
      '1000',
      '--out',
      out,
    ]);
    expect(r.code).toBe(0);
    const records = lines(out);
    expect(records).toHaveLength(2500);
    expect(records[2499]).toEqual({ input: 'q2500', output: 'a2500', _source: { kind: 'postgres', table: T, key: 2500 } });
    expect(r.stdout + r.stderr + readFileSync(out, 'utf8')).not.toContain(password);
  });

  it('takes DATABASE_URL and positional --arg; a bad password fails with exit 1 and a redacted URL', async () => {
    const out = path.join(tempDir(), 'pg.jsonl');
    const ok = await runCli(
      [
        'ingest',
        '--from',
        'postgres',
        '--query',
        `SELECT question AS input, answer AS output FROM ${T} WHERE id = $1`,
        '--arg',
        '42',
        '--out',
        out,
      ],
      {
        env: { DATABASE_URL: pg.url },
      }
    );
    expect(ok.code).toBe(0);
    expect(lines(out)).toMatchObject([{ input: 'q42', output: 'a42' }]);
    const url = new URL(pg.url);
    url.password = 'Wr0ngSecretValue';
    const bad = await runCli(['ingest', '--from', 'postgres', '--url', url.toString(), '--table', T, '--out', out]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('error[DB_ERROR]');
    expect(bad.stderr).not.toContain('Wr0ngSecretValue');
    expect(bad.stderr).toContain(':***@');
  });
});
