// What the SQLite and PostgreSQL connectors share: identifier quoting, a query-or-table choice and
// turning a row into a record with a key for its provenance.
import { ForgeError } from '../errors.js';
import type { ColumnMapping } from './normalize.js';
import type { CommonOptions } from './types.js';

export interface SqlSourceOptions extends CommonOptions, ColumnMapping {
  /** A table (or `schema.table`) to read whole... */
  table?: string;
  /** ...or a SELECT with parameters. */
  query?: string;
  /** Positional parameters (`?` in SQLite, `$1` in PostgreSQL). */
  params?: unknown[];
  /** Named parameters (`:name`, `@name`, `$name` in SQLite only). */
  namedParams?: Record<string, unknown>;
  /** Column whose value identifies the row in provenance; default: the primary key, else the row number. */
  keyCol?: string;
}

/** "schema.table" → "schema"."table", each part quoted so no name can inject SQL. */
export function quoteIdent(name: string): string {
  const parts = name.split('.');
  if (parts.some((p) => p === '')) throw new ForgeError('INVALID_ARGUMENT', `invalid table name "${name}"`);
  return parts.map((p) => `"${p.replace(/"/g, '""')}"`).join('.');
}

export function checkTableOrQuery(options: SqlSourceOptions): void {
  if (!options.table === !options.query) {
    throw new ForgeError('INVALID_ARGUMENT', 'give exactly one of a table (--table) or a query (--query)', {
      suggestion: 'e.g. --table faq, or --query "SELECT question AS input, answer AS output FROM faq"',
    });
  }
}

/** Key for provenance: the key columns' values joined, else the 1-based row number. */
export function rowKey(row: Record<string, unknown>, keyCols: string[], rowNumber: number): string | number {
  if (keyCols.length === 0) return rowNumber;
  const values = keyCols.map((c) => row[c]);
  if (values.some((v) => v === undefined)) return rowNumber;
  return values.length === 1 && typeof values[0] === 'number' ? values[0] : values.map(String).join(',');
}

/** Drops the key column we add ourselves so column auto-detection never sees it. */
export function withoutColumns(row: Record<string, unknown>, hidden: string[]): Record<string, unknown> {
  if (hidden.length === 0) return row;
  const copy = { ...row };
  for (const h of hidden) delete copy[h];
  return copy;
}
