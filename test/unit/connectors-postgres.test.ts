// PostgreSQL connector against a real server (.ci/postgres.sh; see test/helpers/postgres.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SourceRecord, readPostgres } from '../../ts/connectors/index.js';
import { type TestPostgres, sql, testPostgres } from '../helpers/postgres.js';
import { all, failure } from '../helpers/records.js';

let pg: TestPostgres;
const T = `faq_${process.pid}`;

beforeAll(async () => {
  pg = testPostgres();
  await sql(pg.url, `DROP TABLE IF EXISTS ${T}; DROP TABLE IF EXISTS ${T}_log`);
  await sql(
    pg.url,
    `CREATE TABLE ${T} (id int PRIMARY KEY, question text, answer text, msgs jsonb);
     INSERT INTO ${T} SELECT g, 'question ' || g || '?', 'answer ' || g, NULL FROM generate_series(1, 12000) g;
     CREATE TABLE ${T}_log (x int);
     CREATE OR REPLACE FUNCTION ${T}_write() RETURNS text LANGUAGE plpgsql AS $$
       BEGIN INSERT INTO ${T}_log VALUES (1); RETURN 'wrote'; END $$;`
  );
});

afterAll(async () => {
  await sql(pg.url, `DROP TABLE IF EXISTS ${T}; DROP TABLE IF EXISTS ${T}_log; DROP FUNCTION IF EXISTS ${T}_write()`).catch(() => {});
  pg.stop();
});

describe('PostgreSQL connector', () => {
  it('streams a 12k-row table through a cursor, FETCH by FETCH, keyed by the primary key', async () => {
    const batches: number[] = [];
    let n = 0;
    let first: SourceRecord | undefined;
    let last: SourceRecord | undefined;
    for await (const r of readPostgres({
      url: pg.url,
      table: T,
      inputCol: 'question',
      outputCol: 'answer',
      fetchSize: 1000,
      onFetch: (b) => batches.push(b),
    })) {
      n += 1;
      first ??= r;
      last = r;
      // Never more than one batch ahead of the consumer.
      expect(batches.reduce((a, b) => a + b, 0) - n).toBeLessThan(1000);
    }
    expect(n).toBe(12_000);
    expect(batches).toEqual([...Array(12).fill(1000), 0]);
    expect(first).toEqual({ input: 'question 1?', output: 'answer 1', source: { kind: 'postgres', table: T, key: 1 } });
    expect(last?.source).toEqual({ kind: 'postgres', table: T, key: 12_000 });
  });

  it('runs a parameterized query ($1, $2) and reads jsonb chats', async () => {
    const records = await all(
      readPostgres({
        url: pg.url,
        query: `SELECT id, question AS input, answer AS output FROM ${T} WHERE id BETWEEN $1 AND $2 ORDER BY id`,
        params: [10, 12],
        keyCol: 'id',
      })
    );
    expect(records.map((r) => r.source)).toEqual(
      [10, 11, 12].map((key) => ({ kind: 'postgres', query: expect.stringContaining('BETWEEN'), key }))
    );
    const chats = await all(
      readPostgres({
        url: pg.url,
        query: `SELECT '[{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]'::jsonb AS messages`,
      })
    );
    expect(chats[0]).toMatchObject({
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'yo' },
      ],
    });
  });

  it('runs inside a READ ONLY transaction: a query that writes is refused and nothing is written', async () => {
    const err = await failure(readPostgres({ url: pg.url, query: `SELECT ${T}_write() AS text` }));
    expect(err.code).toBe('DB_ERROR');
    expect(err.message).toContain('25006');
    const count = await sql(pg.url, `SELECT count(*)::int AS n FROM ${T}_log`);
    expect(count.rows[0].n).toBe(0);
  });

  it('stops early without leaving the transaction or connection open', async () => {
    let n = 0;
    for await (const _ of readPostgres({ url: pg.url, table: T, inputCol: 'question', outputCol: 'answer', fetchSize: 100 })) {
      if (++n === 5) break;
    }
    expect(n).toBe(5);
    // The connector's backend goes away once its socket closes (poll: the server notices shortly).
    let others = -1;
    for (let i = 0; i < 50 && others !== 0; i++) {
      const r = await sql(
        pg.url,
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = current_user AND pid <> pg_backend_pid()`
      );
      others = r.rows[0].n;
      if (others !== 0) await new Promise((res) => setTimeout(res, 20));
    }
    expect(others).toBe(0);
  });

  it('uses DATABASE_URL when no url is given', async () => {
    const saved = process.env.DATABASE_URL;
    process.env.DATABASE_URL = pg.url;
    try {
      const records = await all(readPostgres({ query: `SELECT 'from env' AS text` }));
      expect(records).toEqual([{ text: 'from env', source: { kind: 'postgres', query: `SELECT 'from env' AS text`, key: 1 } }]);
    } finally {
      if (saved === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = saved;
    }
  });

  it('never shows the password: wrong password, missing table, bad SQL are DB_ERRORs with the URL redacted', async () => {
    const url = new URL(pg.url);
    const password = decodeURIComponent(url.password);
    url.password = 'wrong-Pa55word';
    const wrong = await failure(readPostgres({ url: url.toString(), table: T }));
    expect(wrong.code).toBe('DB_ERROR');
    expect(wrong.message).toContain('28P01');
    expect(wrong.message).not.toContain('wrong-Pa55word');
    expect(wrong.message).toContain(':***@127.0.0.1');
    for (const bad of [{ table: 'no_such_table' }, { query: 'SELEC 1' }]) {
      const err = await failure(readPostgres({ url: pg.url, ...bad }));
      expect(err.code).toBe('DB_ERROR');
      expect(err.message).not.toContain(password);
      expect(JSON.stringify(err)).not.toContain(password);
      expect(String(err.stack)).not.toContain(password);
    }
    expect((await failure(readPostgres({ url: pg.url, table: T, namedParams: { a: 1 } }))).code).toBe('INVALID_ARGUMENT');
    // A URL Node cannot parse: its error would carry the whole input; ours must not.
    for (const broken of ['postgres://u:Br0kenSecret@[bad:5432/x', 'host=h password=Br0kenSecret']) {
      const err = await failure(readPostgres({ url: broken, table: T }));
      expect(err.code).toBe('INVALID_ARGUMENT');
      expect(`${err.message} ${err.stack} ${JSON.stringify(err)}`).not.toContain('Br0kenSecret');
    }
  });
});
