// PostgreSQL through `pg`, inside a READ ONLY transaction (a query that tries to write, even from
// a function, is refused by the server) and streamed with a server-side cursor: DECLARE, then
// FETCH a batch at a time, so only `fetchSize` rows are ever in memory. The connection string
// comes from --url, DATABASE_URL or the PG* variables; it is never printed with its password.
import { ForgeError } from '../errors.js';
import { normalizeRow, settle } from './normalize.js';
import { redact, redactUrl, registerSecret } from './redact.js';
import { type SqlSourceOptions, checkTableOrQuery, quoteIdent, rowKey } from './sql.js';
import type { SourceRecord } from './types.js';

export interface PostgresOptions extends SqlSourceOptions {
  /** postgres://user:password@host:port/db; default: $DATABASE_URL, else libpq's PG* variables. */
  url?: string;
  /** Rows per FETCH. @default 500 */
  fetchSize?: number;
  /** Called after each FETCH with the number of rows it returned (progress, tests). */
  onFetch?: (rows: number) => void;
}

const CURSOR = 'tinyforge_ingest';

// What errors name as the server: the URL without its password, or what the PG* variables say.
function describeTarget(url: string | undefined): string {
  if (url) return redactUrl(url);
  const env = process.env;
  const user = env.PGUSER ? `${env.PGUSER}@` : '';
  return `postgres://${user}${env.PGHOST ?? 'localhost'}:${env.PGPORT ?? '5432'}/${env.PGDATABASE ?? env.PGUSER ?? ''}`;
}

function dbError(target: string, err: unknown, secrets: Array<string | undefined>): ForgeError {
  const e = err as { code?: string; message?: string };
  const message = redact(`${target}: ${e.message ?? String(err)}${e.code ? ` (${e.code})` : ''}`, secrets);
  const refused = e.code === '25006';
  return new ForgeError('DB_ERROR', message, {
    suggestion: refused
      ? 'ingest only reads: the query tried to write inside the read-only transaction'
      : 'check the connection (--url or DATABASE_URL), the table or query, and its parameters',
  });
}

export async function* readPostgres(options: PostgresOptions): AsyncGenerator<SourceRecord> {
  checkTableOrQuery(options);
  if (options.namedParams && Object.keys(options.namedParams).length > 0) {
    throw new ForgeError('INVALID_ARGUMENT', 'PostgreSQL takes positional parameters ($1, $2, ...) only', {
      suggestion: 'use --arg VALUE (once per $n, in order) instead of --param name=value',
    });
  }
  const url = options.url ?? process.env.DATABASE_URL;
  if (url !== undefined && !/^postgres(ql)?:\/\//i.test(url)) {
    throw new ForgeError('INVALID_ARGUMENT', `not a PostgreSQL URL: ${redact(url)}`, {
      suggestion: 'use postgres://user:password@host:5432/database (or leave --url out and set PGHOST, PGUSER, ...)',
    });
  }
  const password = url ? safePassword(url) : process.env.PGPASSWORD;
  registerSecret(password);
  const secrets = [password];
  const target = describeTarget(url);
  const fetchSize = Math.max(1, Math.floor(options.fetchSize ?? 500));

  // Loaded on first use (~0.2 s), so commands that never touch PostgreSQL do not pay for it.
  const pg = (await import('pg')).default;
  let client: InstanceType<typeof pg.Client>;
  try {
    client = new pg.Client(url ? { connectionString: url } : {});
  } catch (err) {
    // Node's URL errors carry the whole input (password included) in `input`: never rethrow them.
    throw new ForgeError(
      'INVALID_ARGUMENT',
      `invalid PostgreSQL URL ${redact(url ?? '', secrets)}: ${redact((err as Error).message, secrets)}`,
      {
        suggestion: 'percent-encode special characters in the user and password',
      }
    );
  }
  // An idle client that loses its connection emits 'error'; without a listener Node would crash.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => {});
    throw dbError(target, err, secrets);
  }
  let inTransaction = false;
  try {
    await client.query('BEGIN READ ONLY');
    inTransaction = true;
    let sql: string;
    let keyCols: string[] = [];
    if (options.table) {
      sql = `SELECT * FROM ${quoteIdent(options.table)}`;
      if (options.keyCol) keyCols = [options.keyCol];
      else {
        const pk = await client.query<{ attname: string }>(
          `SELECT a.attname FROM pg_index i
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = to_regclass($1) AND i.indisprimary
            ORDER BY array_position(i.indkey, a.attnum)`,
          [options.table]
        );
        keyCols = pk.rows.map((r) => r.attname);
      }
    } else {
      sql = options.query!;
      if (options.keyCol) keyCols = [options.keyCol];
    }
    await client.query(`DECLARE ${CURSOR} NO SCROLL CURSOR FOR ${sql}`, options.params ?? []);
    const base = options.table ? { table: options.table } : { query: sql };
    let n = 0;
    while (true) {
      const batch = await client.query(`FETCH ${fetchSize} FROM ${CURSOR}`);
      options.onFetch?.(batch.rows.length);
      if (batch.rows.length === 0) break;
      for (const row of batch.rows as Array<Record<string, unknown>>) {
        n += 1;
        const source = { kind: 'postgres' as const, ...base, key: rowKey(row, keyCols, n) };
        const record = settle(normalizeRow(row, options), source, options);
        if (record) yield record;
      }
      if (batch.rows.length < fetchSize) break;
    }
  } catch (err) {
    if (err instanceof ForgeError) throw err;
    throw dbError(target, err, secrets);
  } finally {
    // Nothing was written: ROLLBACK ends the transaction and drops the cursor, also after an error.
    if (inTransaction) await client.query('ROLLBACK').catch(() => {});
    await client.end().catch(() => {});
  }
}

function safePassword(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).password) || undefined;
  } catch {
    return undefined;
  }
}
