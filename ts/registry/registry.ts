// The model registry: runs, exports and base models as rows with their lineage. Every write is
// one transaction (an artifact and its file list land together or not at all); see db.ts for
// the concurrency story.
import type Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { packageVersion, tinyforgeHome } from '../config/project.js';
import { ForgeError } from '../errors.js';
import { openDatabase } from './db.js';
import { type ArtifactFile, assertSafeToDelete, deleteArtifactPath, listFiles } from './files.js';

export type ArtifactKind = 'run' | 'export' | 'base_model';
export const ARTIFACT_KINDS: readonly ArtifactKind[] = ['run', 'export', 'base_model'];

export interface ArtifactInput {
  /** Where the artifact lives (run folder, service folder, model file or folder). */
  path: string;
  /** Display name; default: the folder or file name. */
  name?: string;
  /** The run an export came from, the export a re-export came from, the run a resumed run continued. */
  parentId?: string;
  /** False for files TinyForge did not create (a user's local base model): never deleted. Default true. */
  owned?: boolean;
  baseModel?: { name: string; sha256?: string };
  dataset?: { path: string; sha256?: string; records?: number };
  hyperparameters?: Record<string, unknown>;
  metrics?: Record<string, unknown>;
  /** Default: { tinyforge, node }. Extra entries (e.g. onnxruntime) are kept. */
  versions?: Record<string, string>;
  extra?: Record<string, unknown>;
  /** The artifact's files; default: listed from `path` (sizes only). */
  files?: ArtifactFile[];
}

export interface Artifact {
  id: string;
  kind: ArtifactKind;
  name: string;
  path: string;
  owned: boolean;
  parentId: string | null;
  baseModel: string | null;
  baseSha256: string | null;
  datasetPath: string | null;
  datasetSha256: string | null;
  datasetRecords: number | null;
  hyperparameters: Record<string, unknown>;
  metrics: Record<string, unknown>;
  versions: Record<string, string>;
  extra: Record<string, unknown>;
  sizeBytes: number;
  files: ArtifactFile[];
  createdAt: string;
  updatedAt: string;
}

interface Row {
  id: string;
  kind: ArtifactKind;
  name: string;
  path: string;
  owned: number;
  parent_id: string | null;
  base_model: string | null;
  base_sha256: string | null;
  dataset_path: string | null;
  dataset_sha256: string | null;
  dataset_records: number | null;
  hyperparameters: string;
  metrics: string;
  versions: string;
  extra: string;
  size_bytes: number;
  created_at: string;
  updated_at: string;
}

const ID_PREFIX: Record<ArtifactKind, string> = { run: 'run', export: 'exp', base_model: 'base' };

export class Registry {
  readonly home: string;
  readonly db: Database.Database;

  /** Opens (creating and migrating if needed) the registry in `home` (default: tinyforgeHome()). */
  static open(options: { home?: string } = {}): Registry {
    return new Registry(options.home ?? tinyforgeHome());
  }

  private constructor(home: string) {
    this.home = home;
    this.db = openDatabase(home);
  }

  close(): void {
    this.db.close();
  }

  registerRun(input: ArtifactInput): Promise<Artifact> {
    return this.register('run', input);
  }

  registerExport(input: ArtifactInput): Promise<Artifact> {
    return this.register('export', input);
  }

  registerBaseModel(input: ArtifactInput & { sha256: string }): Promise<Artifact> {
    return this.register('base_model', { ...input, baseModel: { name: input.name ?? path.basename(input.path), sha256: input.sha256 } });
  }

  /** Inserts, or updates the row already registered at the same kind + path (keeping its id). */
  async register(kind: ArtifactKind, input: ArtifactInput): Promise<Artifact> {
    const abs = path.resolve(input.path);
    const files = input.files ?? (await listFiles(abs));
    const now = new Date().toISOString();
    const versions = { tinyforge: packageVersion(), node: process.version, ...input.versions };
    const write = this.db.transaction(() => {
      if (input.parentId !== undefined && !this.db.prepare('SELECT 1 FROM artifacts WHERE id = ?').get(input.parentId)) {
        throw new ForgeError('NOT_FOUND', `parent ${input.parentId} is not in the registry`, {
          suggestion: 'see `foremforge models list`',
        });
      }
      const existing = this.db.prepare('SELECT id, created_at FROM artifacts WHERE kind = ? AND path = ?').get(kind, abs) as
        | { id: string; created_at: string }
        | undefined;
      const id = existing?.id ?? `${ID_PREFIX[kind]}-${randomBytes(6).toString('hex')}`;
      this.db
        .prepare(
          `INSERT INTO artifacts (id, kind, name, path, owned, parent_id, base_model, base_sha256, dataset_path,
             dataset_sha256, dataset_records, hyperparameters, metrics, versions, extra, size_bytes, created_at, updated_at)
           VALUES (@id, @kind, @name, @path, @owned, @parent_id, @base_model, @base_sha256, @dataset_path, @dataset_sha256,
             @dataset_records, @hyperparameters, @metrics, @versions, @extra, @size_bytes, @created_at, @updated_at)
           ON CONFLICT(id) DO UPDATE SET name = excluded.name, owned = excluded.owned, parent_id = excluded.parent_id,
             base_model = excluded.base_model, base_sha256 = excluded.base_sha256, dataset_path = excluded.dataset_path,
             dataset_sha256 = excluded.dataset_sha256, dataset_records = excluded.dataset_records,
             hyperparameters = excluded.hyperparameters, metrics = excluded.metrics, versions = excluded.versions,
             extra = excluded.extra, size_bytes = excluded.size_bytes, updated_at = excluded.updated_at`
        )
        .run({
          id,
          kind,
          name: input.name ?? path.basename(abs),
          path: abs,
          owned: input.owned === false ? 0 : 1,
          parent_id: input.parentId ?? null,
          base_model: input.baseModel?.name ?? null,
          base_sha256: input.baseModel?.sha256 ?? null,
          dataset_path: input.dataset ? path.resolve(input.dataset.path) : null,
          dataset_sha256: input.dataset?.sha256 ?? null,
          dataset_records: input.dataset?.records ?? null,
          hyperparameters: JSON.stringify(input.hyperparameters ?? {}),
          metrics: JSON.stringify(input.metrics ?? {}),
          versions: JSON.stringify(versions),
          extra: JSON.stringify(input.extra ?? {}),
          size_bytes: files.reduce((n, f) => n + f.size, 0),
          created_at: existing?.created_at ?? now,
          updated_at: now,
        });
      this.db.prepare('DELETE FROM artifact_files WHERE artifact_id = ?').run(id);
      const addFile = this.db.prepare('INSERT INTO artifact_files (artifact_id, path, size, sha256) VALUES (?, ?, ?, ?)');
      for (const f of files) addFile.run(id, f.path, f.size, f.sha256 ?? null);
      return id;
    });
    // IMMEDIATE: take the write lock up front, so a concurrent writer waits (busy_timeout)
    // instead of failing on a read-to-write lock upgrade.
    const id = write.immediate();
    return this.get(id);
  }

  /** All artifacts, newest first, optionally of one kind. */
  list(kind?: ArtifactKind): Artifact[] {
    const rows = (
      kind
        ? this.db.prepare('SELECT * FROM artifacts WHERE kind = ? ORDER BY created_at DESC, id').all(kind)
        : this.db.prepare('SELECT * FROM artifacts ORDER BY created_at DESC, id').all()
    ) as Row[];
    return rows.map((r) => this.toArtifact(r, false));
  }

  /** By id, unique id prefix (with or without the `run-` part) or exact name. */
  get(ref: string): Artifact {
    const exact = this.db.prepare('SELECT * FROM artifacts WHERE id = ?').get(ref) as Row | undefined;
    if (exact) return this.toArtifact(exact, true);
    const rows = this.db.prepare('SELECT * FROM artifacts').all() as Row[];
    const hex = (id: string) => id.slice(id.indexOf('-') + 1);
    let matches = rows.filter((r) => r.id.startsWith(ref) || hex(r.id).startsWith(ref));
    if (matches.length === 0 || ref.length < 2) matches = rows.filter((r) => r.name === ref);
    if (matches.length === 1) return this.toArtifact(matches[0]!, true);
    if (matches.length === 0) {
      throw new ForgeError('NOT_FOUND', `no run, export or base model matches "${ref}"`, { suggestion: 'see `foremforge models list`' });
    }
    throw new ForgeError('AMBIGUOUS_ID', `"${ref}" matches ${matches.length} artifacts: ${matches.map((m) => m.id).join(', ')}`, {
      suggestion: 'give more characters of the id',
    });
  }

  /** The artifact registered at this path, if any. */
  findByPath(p: string, kind?: ArtifactKind): Artifact | undefined {
    const abs = path.resolve(p);
    const row = (
      kind
        ? this.db.prepare('SELECT * FROM artifacts WHERE path = ? AND kind = ?').get(abs, kind)
        : this.db.prepare('SELECT * FROM artifacts WHERE path = ?').get(abs)
    ) as Row | undefined;
    return row ? this.toArtifact(row, true) : undefined;
  }

  /**
   * Where an artifact comes from, oldest first and ending with it: its parents (export → run →
   * resumed-from run ...) and, above the top one, the base model row with the base SHA-256 it
   * records (runs point at their base by hash, not by parent). `models show` prints it.
   */
  lineage(ref: string): Artifact[] {
    const byId = this.db.prepare('SELECT * FROM artifacts WHERE id = ?');
    const chain: Artifact[] = [];
    let cur: Artifact | undefined = this.get(ref);
    while (cur && !chain.some((a) => a.id === cur!.id)) {
      chain.unshift(cur);
      const parent: Row | undefined = cur.parentId ? (byId.get(cur.parentId) as Row | undefined) : undefined;
      cur = parent ? this.toArtifact(parent, false) : undefined;
    }
    const top = chain[0]!;
    if (top.kind !== 'base_model' && top.baseSha256) {
      const base = this.db
        .prepare("SELECT * FROM artifacts WHERE kind = 'base_model' AND base_sha256 = ? ORDER BY created_at, id LIMIT 1")
        .get(top.baseSha256) as Row | undefined;
      if (base) chain.unshift(this.toArtifact(base, false));
    }
    return chain;
  }

  /**
   * Removes the row (children keep existing, with no parent). With deleteFiles, also deletes the
   * artifact's path when TinyForge owns it; a user's own files are never deleted.
   */
  async remove(ref: string, options: { deleteFiles?: boolean } = {}): Promise<{ artifact: Artifact; deletedFiles: boolean }> {
    const artifact = this.get(ref);
    const deleteFiles = options.deleteFiles === true && artifact.owned;
    // Refuse before touching the row, so a refused delete leaves everything as it was.
    if (deleteFiles) assertSafeToDelete(artifact.path);
    this.db.transaction(() => this.db.prepare('DELETE FROM artifacts WHERE id = ?').run(artifact.id)).immediate();
    let deletedFiles = false;
    if (deleteFiles) {
      await deleteArtifactPath(artifact.path);
      deletedFiles = true;
    }
    return { artifact, deletedFiles };
  }

  private toArtifact(r: Row, withFiles: boolean): Artifact {
    const files = withFiles
      ? (
          this.db.prepare('SELECT path, size, sha256 FROM artifact_files WHERE artifact_id = ? ORDER BY path').all(r.id) as {
            path: string;
            size: number;
            sha256: string | null;
          }[]
        ).map((f) => ({ path: f.path, size: f.size, ...(f.sha256 ? { sha256: f.sha256 } : {}) }))
      : [];
    return {
      id: r.id,
      kind: r.kind,
      name: r.name,
      path: r.path,
      owned: r.owned === 1,
      parentId: r.parent_id,
      baseModel: r.base_model,
      baseSha256: r.base_sha256,
      datasetPath: r.dataset_path,
      datasetSha256: r.dataset_sha256,
      datasetRecords: r.dataset_records,
      hyperparameters: JSON.parse(r.hyperparameters) as Record<string, unknown>,
      metrics: JSON.parse(r.metrics) as Record<string, unknown>,
      versions: JSON.parse(r.versions) as Record<string, string>,
      extra: JSON.parse(r.extra) as Record<string, unknown>,
      sizeBytes: r.size_bytes,
      files,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
  }
}
