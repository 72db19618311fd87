// Dataset tools over the one JSONL record schema (see record.ts): streaming validation with line
// numbers, statistics (with the base model's tokenizer), seeded split and dedup.
export * from './record.js';
export * from './problems.js';
export { type CheckedRecord, checkLine, checkRecord, typeName } from './check-record.js';
export { OVERLONG_LINE, type LineBatch, readLineBatches } from './lines.js';
export { SeenHashes, hash64 } from './hash.js';
export { canonicalForm, normalizeText, recordHash } from './canonical.js';
export {
  type ValidateOptions,
  type ValidationResult,
  type ValidationSummary,
  type FileProblem,
  assertUsable,
  datasetWarnings,
  formatProblem,
  problemsToError,
  validateFile,
} from './validate.js';
export { type DatasetStats, type HistogramBucket, type LengthStats, datasetStats, tokenHistogram } from './stats.js';
export { type SplitOptions, type SplitResult, seededRandom, splitFile } from './split.js';
export { type DedupResult, dedupFile } from './dedup.js';
export { type NativeTokenizer, TokenCounter, loadTokenizer, loadTokenizerFor } from './tokens.js';
