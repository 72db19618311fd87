// `foremforge models list|show|rm`: the registry of runs, exports and base models.
import { Command, Option } from 'commander';
import { createInterface } from 'node:readline/promises';
import { ForgeError } from '../../ts/errors.js';
// Types only: the registry (and its native SQLite driver) loads when a models command runs, not on
// every CLI start.
import type { Artifact, ArtifactKind, Registry } from '../../ts/registry/index.js';

const KINDS: ArtifactKind[] = ['run', 'export', 'base_model'];

const printJson = (value: unknown): void => void process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

async function withRegistry(fn: (r: Registry) => Promise<void> | void): Promise<void> {
  const { Registry } = await import('../../ts/registry/index.js');
  const registry = Registry.open();
  try {
    await fn(registry);
  } finally {
    registry.close();
  }
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return `${rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join('  ')
        .trimEnd()
    )
    .join('\n')}\n`;
}

const list = new Command('list')
  .alias('ls')
  .description('List registered runs, exports and base models, newest first.')
  .addOption(new Option('--kind <kind>', 'only this kind').choices(KINDS))
  .option('--json', 'print the list as JSON')
  .action((flags: { kind?: ArtifactKind; json?: boolean }) =>
    withRegistry((registry) => {
      const items = registry.list(flags.kind);
      if (flags.json) {
        printJson(items);
        return;
      }
      if (items.length === 0) {
        process.stdout.write(`no artifacts registered in ${registry.home}\n`);
        return;
      }
      const rows = [['ID', 'KIND', 'NAME', 'SIZE', 'CREATED', 'BASE', 'DATA']];
      for (const a of items) {
        rows.push([
          a.id,
          a.kind,
          a.name,
          formatBytes(a.sizeBytes),
          a.createdAt.slice(0, 19).replace('T', ' '),
          a.baseModel ?? '-',
          a.datasetPath ?? '-',
        ]);
      }
      process.stdout.write(table(rows));
    })
  );

function describe(a: Artifact): string {
  const lines = [
    `${a.id}  (${a.kind})`,
    `  name:       ${a.name}`,
    `  path:       ${a.path}${a.owned ? '' : '  (not owned: never deleted)'}`,
    `  created:    ${a.createdAt}${a.updatedAt !== a.createdAt ? `  (updated ${a.updatedAt})` : ''}`,
    `  parent:     ${a.parentId ?? '-'}`,
    `  base:       ${a.baseModel ?? '-'}${a.baseSha256 ? `  sha256 ${a.baseSha256}` : ''}`,
    `  dataset:    ${a.datasetPath ?? '-'}${a.datasetSha256 ? `  sha256 ${a.datasetSha256}` : ''}${a.datasetRecords !== null ? `  (${a.datasetRecords} records)` : ''}`,
    `  versions:   ${Object.entries(a.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  ];
  if (Object.keys(a.hyperparameters).length) lines.push(`  hyperparameters: ${JSON.stringify(a.hyperparameters)}`);
  if (Object.keys(a.metrics).length) lines.push(`  metrics:    ${JSON.stringify(a.metrics)}`);
  if (Object.keys(a.extra).length) lines.push(`  extra:      ${JSON.stringify(a.extra)}`);
  lines.push(`  files (${a.files.length}, ${formatBytes(a.sizeBytes)}):`);
  for (const f of a.files) lines.push(`    ${f.path || '.'}  ${formatBytes(f.size)}${f.sha256 ? `  ${f.sha256}` : ''}`);
  return `${lines.join('\n')}\n`;
}

const show = new Command('show')
  .description('Show one artifact with its lineage and files (id, id prefix or name).')
  .argument('<id>', 'id, unique id prefix, or name')
  .option('--json', 'print the artifact as JSON')
  .action((ref: string, flags: { json?: boolean }) =>
    withRegistry((registry) => {
      const a = registry.get(ref);
      const chain = registry.lineage(a.id);
      if (flags.json) printJson({ ...a, lineage: chain.map((c) => ({ id: c.id, kind: c.kind, name: c.name })) });
      else
        process.stdout.write(
          `lineage: ${chain.map((c) => `${c.kind === 'base_model' ? 'base' : c.kind} ${c.name} (${c.id})`).join(' → ')}\n${describe(a)}`
        );
    })
  );

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^(y|yes)$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

const rm = new Command('rm')
  .description('Remove an artifact from the registry and delete its files (asks first; --yes to skip).')
  .argument('<id>', 'id, unique id prefix, or name')
  .option('-y, --yes', 'do not ask for confirmation')
  .option('--keep-files', 'only remove the registry entry')
  .option('--json', 'print what was removed as JSON')
  .action((ref: string, flags: { yes?: boolean; keepFiles?: boolean; json?: boolean }) =>
    withRegistry(async (registry) => {
      const a = registry.get(ref);
      const deleteFiles = !flags.keepFiles && a.owned;
      if (!flags.yes) {
        if (!process.stdin.isTTY) {
          throw new ForgeError('CONFIRMATION_REQUIRED', `removing ${a.id} needs confirmation and there is no terminal to ask on`, {
            suggestion: 'pass --yes to remove without asking',
          });
        }
        const what = deleteFiles
          ? `${a.id} (${a.kind}) and delete ${a.path} (${formatBytes(a.sizeBytes)})`
          : `${a.id} (${a.kind}) from the registry`;
        if (!(await confirm(`Remove ${what}? [y/N] `))) {
          throw new ForgeError('ABORTED', 'nothing removed', { suggestion: 'answer y to remove, or pass --yes' });
        }
      }
      const result = await registry.remove(a.id, { deleteFiles });
      if (flags.json)
        printJson({
          removed: result.artifact.id,
          kind: result.artifact.kind,
          path: result.artifact.path,
          deletedFiles: result.deletedFiles,
        });
      else process.stdout.write(`removed ${result.artifact.id}${result.deletedFiles ? ` and deleted ${result.artifact.path}` : ''}\n`);
    })
  );

export const modelsCommand = new Command('models')
  .description('The model registry: runs, exports and base models with their lineage.')
  .addCommand(list)
  .addCommand(show)
  .addCommand(rm);
