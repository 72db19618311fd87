// Registry rows for an export and its ancestors, so `foremforge models show <export>` prints
// base → run → export. The run and the base are registered when they are not yet (a run trained
// before the registry existed, a base given by path: owned=false, never deleted by `models rm`).
import path from 'node:path';
import { registerExportFromFolder, registerRunFromFolder } from '../registry/lineage.js';
import type { Artifact, Registry } from '../registry/registry.js';
import type { ExportSource } from './export-source.js';

export interface Lineage {
  /** The row the export descends from: the run, or the base when there is no run. */
  parentId: string;
  base: Artifact;
  run?: Artifact;
}

/** The base row: the one at this path, else one with the same SHA-256 (a pulled copy), else a new row. */
async function baseRow(registry: Registry, source: ExportSource): Promise<Artifact> {
  const b = source.base;
  const found = registry.findByPath(b.path, 'base_model') ?? registry.list('base_model').find((a) => a.baseSha256 === b.sha256);
  if (found) return found;
  return registry.registerBaseModel({
    path: b.path,
    name: b.name ?? path.basename(b.path),
    sha256: b.sha256,
    owned: false,
    extra: { format: b.format, source: 'local' },
  });
}

/** Registers what the export descends from (idempotent) and returns the parent to record. */
export async function ensureLineage(registry: Registry, source: ExportSource): Promise<Lineage> {
  const base = await baseRow(registry, source);
  if (!source.run) return { parentId: source.parentId ?? base.id, base };
  const run = registry.findByPath(source.run.path, 'run') ?? (await registerRunFromFolder(source.run.path, { registry }));
  return { parentId: source.parentId ?? run.id, base, run };
}

/** The export's own row (re-exporting to the same folder updates it, keeping its id). */
export function registerExport(registry: Registry, out: string, lineage: Lineage): Promise<Artifact> {
  return registerExportFromFolder(out, { registry, parentId: lineage.parentId });
}
