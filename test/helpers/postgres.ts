// A real PostgreSQL server for tests. CI starts one with .ci/postgres.sh and exports
// TINYFORGE_TEST_PG_URL; when that is unset (a plain `npm test`), this runs the same script, and
// stops the cluster again after the file's tests if it was the one that started it.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { ROOT } from './cli.js';

export interface TestPostgres {
  url: string;
  /** Stops the cluster if this process started it; a no-op otherwise. */
  stop(): void;
}

const SCRIPT = path.join(ROOT, '.ci/postgres.sh');

export function testPostgres(): TestPostgres {
  const fromEnv = process.env.TINYFORGE_TEST_PG_URL;
  if (fromEnv) return { url: fromEnv, stop: () => {} };
  const out = execFileSync('bash', [SCRIPT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 300_000 });
  const vars = Object.fromEntries([...out.matchAll(/^export (\w+)='?([^'\n]*)'?$/gm)].map((m) => [m[1], m[2]]));
  const url = vars.TINYFORGE_TEST_PG_URL;
  if (!url) throw new Error(`.ci/postgres.sh printed no TINYFORGE_TEST_PG_URL:\n${out}`);
  const started = vars.TINYFORGE_TEST_PG_STARTED === '1';
  return {
    url,
    stop: () => {
      if (started) execFileSync('bash', [SCRIPT, 'stop'], { stdio: 'ignore' });
    },
  };
}

/** Runs SQL as the test user (who owns the test database), outside any connector. */
export async function sql(url: string, text: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(text, params);
  } finally {
    await client.end();
  }
}
