// The model registry: an embedded SQLite database (`<home>/registry.db`, WAL) holding every run,
// export and base model with its lineage: base model + SHA-256, dataset + SHA-256 + record count,
// hyperparameters, metrics, artifact files and sizes, versions, timestamps, parent.
//
// Home: $TINYFORGE_HOME, else `.tinyforge/` in the project (the folder with
// tinyforge.config.json, found by walking up), else ~/.tinyforge.
//
// Wiring for producers (one call each, all idempotent per path):
//   - `foremforge train`:  await registerRunFromFolder(runDir)
//       reads <runDir>/tinyforge.json: { name?, base: "name" | {name|path, sha256},
//       data: "path" | {path, sha256?, records?}, hyperparameters, metrics, versions,
//       parent?: run id or path (a resumed run) }; missing dataset hash/count are computed.
//   - `foremforge export`: await registerExportFromFolder(serviceDir)
//       reads <serviceDir>/tinyforge.json; `run` (id or run folder path) becomes the parent, and
//       base/dataset lineage is inherited from that run when the manifest does not repeat it.
//   - `foremforge pull`:   await registerPulledModel(pullResult)
//       a model found at the user's own path (source local / hf-cache) is registered with
//       owned=false so `models rm` never deletes it.
// Lower level: Registry.open({home}) → registerRun / registerExport / registerBaseModel /
// list(kind?) / get(id, id prefix or name) / findByPath / remove(id, {deleteFiles}).
export { type Artifact, type ArtifactInput, type ArtifactKind, ARTIFACT_KINDS, Registry } from './registry.js';
export { type ArtifactFile, listFiles, sha256File } from './files.js';
export { DB_FILE, SCHEMA_VERSION } from './db.js';
export {
  MANIFEST_FILE,
  type PulledModel,
  type RegisterOptions,
  registerExportFromFolder,
  registerPulledModel,
  registerRunFromFolder,
} from './lineage.js';
