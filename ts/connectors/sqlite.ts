// SQLite through better-sqlite3, opened read-only (and only if the file exists, so a typo never
// creates an empty database). Rows stream with `.iterate()`: a large table is never in memory.
import Database from 'better-sqlite3';
import { ForgeError } from '../errors.js';
import { normalizeRow, settle } from './normalize.js';
import { type SqlSourceOptions, checkTableOrQuery, quoteIdent, rowKey, withoutColumns } from './sql.js';
import type { SourceRecord } from './types.js';

export type SqliteOptions = SqlSourceOptions;

const KEY = '__tinyforge_rowid';

function dbError(file: string, err: unknown): ForgeError {
  const e = err as { code?: string; message?: string };
  return new ForgeError('DB_ERROR', `sqlite ${file}: ${e.message ?? String(err)}${e.code ? ` (${e.code})` : ''}`, {
    suggestion: 'check the table name, the query and its parameters',
    cause: err,
  });
}

export async function* readSqlite(file: string, options: SqliteOptions): AsyncGenerator<SourceRecord> {
  checkTableOrQuery(options);
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new ForgeError('NOT_FOUND', `cannot open SQLite database ${file}: ${(err as Error).message}`, {
      suggestion: 'check the path given to --db',
      cause: err,
    });
  }
  let rows: IterableIterator<unknown> | undefined;
  try {
    let sql: string;
    let keyCols: string[] = [];
    let hidden: string[] = [];
    if (options.table) {
      const ident = quoteIdent(options.table);
      const columns = db.prepare(`SELECT name, pk FROM pragma_table_info(?)`).all(options.table.split('.').pop()!) as Array<{
        name: string;
        pk: number;
      }>;
      if (columns.length === 0) {
        throw new ForgeError('NOT_FOUND', `sqlite ${file}: no table "${options.table}"`, {
          suggestion: 'list the tables with: sqlite3 FILE .tables',
        });
      }
      const pk = columns
        .filter((c) => c.pk > 0)
        .sort((a, b) => a.pk - b.pk)
        .map((c) => c.name);
      if (options.keyCol) keyCols = [options.keyCol];
      else if (pk.length > 0) keyCols = pk;
      if (keyCols.length === 0) {
        // No primary key: the rowid identifies the row (WITHOUT ROWID tables always have a key).
        sql = `SELECT rowid AS ${KEY}, * FROM ${ident}`;
        keyCols = [KEY];
        hidden = [KEY];
      } else sql = `SELECT * FROM ${ident}`;
    } else {
      sql = options.query!;
      if (options.keyCol) keyCols = [options.keyCol];
    }
    let stmt: Database.Statement;
    try {
      stmt = db.prepare(sql);
    } catch (err) {
      throw dbError(file, err);
    }
    if (!stmt.reader) {
      throw new ForgeError('INVALID_ARGUMENT', `sqlite ${file}: the query returns no rows (only SELECT-like statements are read)`, {
        suggestion: 'pass a SELECT',
      });
    }
    const args: unknown[] = [];
    if (options.namedParams && Object.keys(options.namedParams).length > 0) args.push(options.namedParams);
    if (options.params) args.push(...options.params);
    try {
      rows = stmt.iterate(...args);
    } catch (err) {
      throw dbError(file, err);
    }
    let n = 0;
    const base = options.table ? { table: options.table } : { query: sql };
    while (true) {
      let next: IteratorResult<unknown>;
      try {
        next = rows.next();
      } catch (err) {
        throw dbError(file, err);
      }
      if (next.done) break;
      n += 1;
      const row = next.value as Record<string, unknown>;
      const source = { kind: 'sqlite' as const, path: file, ...base, key: rowKey(row, keyCols, n) };
      const record = settle(normalizeRow(withoutColumns(row, hidden), options), source, options);
      if (record) yield record;
    }
  } finally {
    // A consumer that stops early leaves the statement running: end it, or close() refuses.
    rows?.return?.();
    db.close();
  }
}
