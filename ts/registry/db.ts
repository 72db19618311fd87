// The registry database: one SQLite file (`<home>/registry.db`) in WAL mode, so readers never
// block the writer and two processes can register at once; busy_timeout makes a second writer
// wait its turn instead of failing. The schema evolves through numbered migrations recorded in
// schema_migrations, applied in one IMMEDIATE transaction so concurrent openers migrate once.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { ForgeError } from '../errors.js';

export const DB_FILE = 'registry.db';

interface Migration {
  version: number;
  sql: string;
}

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE artifacts (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('run', 'export', 'base_model')),
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        -- 1 when TinyForge made the files (runs, exports, cached downloads) and may delete them;
        -- 0 for a user's own files (a local base model), which rm never touches.
        owned INTEGER NOT NULL DEFAULT 1,
        parent_id TEXT REFERENCES artifacts(id) ON DELETE SET NULL,
        base_model TEXT,
        base_sha256 TEXT,
        dataset_path TEXT,
        dataset_sha256 TEXT,
        dataset_records INTEGER,
        hyperparameters TEXT NOT NULL DEFAULT '{}',
        metrics TEXT NOT NULL DEFAULT '{}',
        versions TEXT NOT NULL DEFAULT '{}',
        extra TEXT NOT NULL DEFAULT '{}',
        size_bytes INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      -- One artifact per place on disk: registering a path again updates its row.
      CREATE UNIQUE INDEX artifacts_kind_path ON artifacts(kind, path);
      CREATE INDEX artifacts_created ON artifacts(created_at);
      CREATE TABLE artifact_files (
        artifact_id TEXT NOT NULL REFERENCES artifacts(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT,
        PRIMARY KEY (artifact_id, path)
      );
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

export function openDatabase(home: string): Database.Database {
  const file = path.join(home, DB_FILE);
  let db: Database.Database;
  try {
    mkdirSync(home, { recursive: true });
    db = new Database(file);
  } catch (err) {
    throw new ForgeError('REGISTRY_UNAVAILABLE', `cannot open the registry at ${file}: ${(err as Error).message}`, {
      suggestion: 'check that the folder is writable, or set TINYFORGE_HOME to another folder',
      cause: err,
    });
  }
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  // Switching to WAL needs a lock SQLite does not wait for with the busy handler when another
  // process is creating or recovering the same file at that moment; retry it ourselves.
  retryWhileBusy(() => db.pragma('journal_mode = WAL'));
  db.pragma('synchronous = NORMAL'); // durable across process crashes in WAL mode; fsync at checkpoints
  db.pragma('foreign_keys = ON');
  migrate(db, file);
  return db;
}

const BUSY_TIMEOUT_MS = 10_000;

function retryWhileBusy<T>(op: () => T): T {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let attempt = 0; ; attempt++) {
    try {
      return op();
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() >= deadline) throw err;
      Atomics.wait(pause, 0, 0, Math.min(5 * 2 ** attempt, 100));
    }
  }
}

function migrate(db: Database.Database, file: string): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
  const apply = db.transaction(() => {
    const current = (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
    if (current > SCHEMA_VERSION) {
      throw new ForgeError('REGISTRY_TOO_NEW', `${file} has schema version ${current}; this TinyForge knows up to ${SCHEMA_VERSION}`, {
        suggestion: 'upgrade TinyForge, or set TINYFORGE_HOME to use another registry',
      });
    }
    const record = db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)');
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      db.exec(m.sql);
      record.run(m.version, new Date().toISOString());
    }
  });
  apply.immediate();
}
