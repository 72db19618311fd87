// `foremforge ingest --from file|sqlite|postgres|gdocs ... --out data.jsonl`: read a source through
// its connector and write one normalized JSONL training set, atomically, with a summary.
import { Command, Option } from 'commander';
import type { SourceSpec } from '../../ts/connectors/index.js';
import { type IngestSummary, SkipLog, formatSummary, progressLine } from '../../ts/connectors/report.js';
import { scrubError } from '../../ts/connectors/redact.js';
import { ForgeError } from '../../ts/errors.js';
import { optionalNumberFlag } from '../flags.js';

interface IngestFlags {
  from: 'file' | 'sqlite' | 'postgres' | 'gdocs';
  out: string;
  path?: string;
  db?: string;
  include: string[];
  exclude: string[];
  inputCol?: string;
  outputCol?: string;
  textCol?: string;
  messagesCol?: string;
  delimiter?: string;
  encoding?: string;
  maxTokens?: string;
  table?: string;
  query?: string;
  param: string[];
  arg: string[];
  keyCol?: string;
  url?: string;
  fetchSize?: string;
  doc: string[];
  folder?: string;
  mock?: string;
  tokenFile?: string;
  serviceAccount?: string;
  skipInvalid?: boolean;
  provenance: boolean;
  json?: boolean;
}

const collect = (value: string, previous: string[]) => [...previous, value];

function usage(message: string, suggestion?: string): ForgeError {
  return new ForgeError('INVALID_ARGUMENT', message, suggestion ? { suggestion } : {});
}

function namedParams(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq < 1) throw usage(`--param takes name=value, got "${pair}"`, 'use --arg VALUE for positional parameters');
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

function sourceSpec(flags: IngestFlags, common: Record<string, unknown>): SourceSpec {
  const mapping = {
    ...(flags.inputCol && { inputCol: flags.inputCol }),
    ...(flags.outputCol && { outputCol: flags.outputCol }),
    ...(flags.textCol && { textCol: flags.textCol }),
    ...(flags.messagesCol && { messagesCol: flags.messagesCol }),
  };
  const sql = {
    ...mapping,
    ...(flags.table && { table: flags.table }),
    ...(flags.query && { query: flags.query }),
    ...(flags.keyCol && { keyCol: flags.keyCol }),
    params: flags.arg,
    namedParams: namedParams(flags.param),
  };
  switch (flags.from) {
    case 'file':
      if (!flags.path) throw usage('--from file needs --path FILE_OR_FOLDER');
      return {
        from: 'file',
        path: flags.path,
        ...common,
        ...mapping,
        include: flags.include,
        exclude: flags.exclude,
        ...(flags.delimiter && { delimiter: flags.delimiter === '\\t' ? '\t' : flags.delimiter }),
        ...(flags.encoding && { encoding: flags.encoding }),
      };
    case 'sqlite':
      if (!flags.db) throw usage('--from sqlite needs --db FILE');
      return { from: 'sqlite', path: flags.db, ...common, ...sql };
    case 'postgres': {
      const fetchSize = optionalNumberFlag('--fetch-size', flags.fetchSize, { integer: true, min: 1 });
      return { from: 'postgres', ...common, ...sql, ...(flags.url && { url: flags.url }), ...(fetchSize && { fetchSize }) };
    }
    case 'gdocs':
      return {
        from: 'gdocs',
        ...common,
        documentIds: flags.doc,
        ...(flags.folder && { folderId: flags.folder }),
        ...(flags.mock && { mode: 'mock' as const, mockDir: flags.mock }),
        ...(flags.tokenFile && { tokenFile: flags.tokenFile }),
        ...(flags.serviceAccount && { serviceAccountKeyFile: flags.serviceAccount }),
      };
  }
}

export const ingestCommand = new Command('ingest')
  .description('Read training data from files, SQLite, PostgreSQL or Google Docs into one JSONL file.')
  .addOption(new Option('--from <source>', 'where the data is').choices(['file', 'sqlite', 'postgres', 'gdocs']).makeOptionMandatory())
  .requiredOption('--out <file>', 'JSONL file to write (replaced atomically)')
  .option('--path <path>', 'file: a file or a folder (recursed)')
  .option('--include <glob>', 'file: only paths matching (repeatable)', collect, [])
  .option('--exclude <glob>', 'file: skip paths matching (repeatable)', collect, [])
  .option('--input-col <name>', 'column/field for the input')
  .option('--output-col <name>', 'column/field for the output')
  .option('--text-col <name>', 'column/field for plain text records')
  .option('--messages-col <name>', 'column/field holding a JSON array of chat messages')
  .option('--delimiter <char>', 'CSV delimiter (default , or tab for .tsv)')
  .option('--encoding <name>', 'CSV encoding: utf8, utf16le, latin1, windows-1252, ...')
  .option('--max-tokens <n>', 'token budget per text chunk (TXT, Markdown, PDF, DOCX, Google Docs)')
  .option('--db <file>', 'sqlite: database file (opened read-only)')
  .option('--table <name>', 'sqlite/postgres: table to read')
  .option('--query <sql>', 'sqlite/postgres: SELECT to run')
  .option('--param <name=value>', 'sqlite: named query parameter (repeatable)', collect, [])
  .option('--arg <value>', 'sqlite/postgres: positional query parameter, in order (repeatable)', collect, [])
  .option('--key-col <name>', 'sqlite/postgres: column identifying a row in provenance')
  .option('--url <url>', 'postgres: connection string (default: $DATABASE_URL, then PG* variables)')
  .option('--fetch-size <n>', 'postgres: rows per cursor FETCH', '500')
  .option('--doc <id>', 'gdocs: document id (repeatable)', collect, [])
  .option('--folder <id>', 'gdocs: Drive folder id (its Google Docs)')
  .option('--mock <dir>', 'gdocs: read recorded API responses from DIR (offline)')
  .option('--token-file <file>', 'gdocs: OAuth access token file (default: $GOOGLE_OAUTH_TOKEN)')
  .option('--service-account <file>', 'gdocs: service-account JSON key (default: $GOOGLE_APPLICATION_CREDENTIALS)')
  .option('--skip-invalid', 'skip records that cannot be normalized (listed in the summary) instead of failing')
  .option('--no-provenance', 'leave out the _source field on each line')
  .option('--json', 'print the summary as JSON on stdout')
  .exitOverride()
  .action(async (flags: IngestFlags) => {
    const skips = new SkipLog();
    const ignoredFiles: IngestSummary['ignoredFiles'] = [];
    const maxTokens = optionalNumberFlag('--max-tokens', flags.maxTokens, { integer: true, min: 1 });
    const common = {
      skipInvalid: flags.skipInvalid === true,
      onSkip: (s: Parameters<SkipLog['add']>[0]) => skips.add(s),
      onIgnoredFile: (file: string, reason: string) => ignoredFiles.push({ file, reason }),
      ...(maxTokens && { maxTokens }),
    };
    const spec = sourceSpec(flags, common);
    // The connectors (and their parsers and drivers) load only when ingest runs.
    const { openSource, writeJsonl } = await import('../../ts/connectors/index.js');
    const controller = new AbortController();
    const onSigint = () => controller.abort(new ForgeError('ABORTED', 'interrupted; nothing was written'));
    process.once('SIGINT', onSigint);
    const progress = progressLine(process.stderr, skips);
    try {
      const stats = await writeJsonl(openSource(spec), flags.out, {
        provenance: flags.provenance,
        onRecord: progress.update,
        signal: controller.signal,
        beforeCommit: (s) => {
          if (s.records === 0) {
            throw new ForgeError(
              'INVALID_DATA',
              `no records found${skips.total ? ` (${skips.total} skipped as invalid)` : ''}; ${flags.out} was not written`,
              {
                suggestion: 'check the source, the include/exclude globs and the column mapping',
              }
            );
          }
        },
      });
      progress.done();
      const summary: IngestSummary = { out: flags.out, ...stats, skipped: skips.summary(), ignoredFiles };
      process.stdout.write(flags.json ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(summary));
    } catch (err) {
      // Connectors redact their own errors; this catches anything a library threw with a secret in it.
      throw scrubError(err, [flags.url]);
    } finally {
      progress.done();
      process.removeListener('SIGINT', onSigint);
    }
  });
