// Every `err.code` TinyForge produces, in one list: the Rust core's (`code()` in
// crates/*/src/error.rs, the binding's `js_error` calls, crates/node/index.cjs) and the TypeScript
// layer's (`ForgeError` takes an `ErrorCode`, so an unlisted code there does not compile). A code the
// Rust side returns that is missing here fails test/unit/error-codes.test.ts. Codes are stable:
// scripts and the CLI's exit codes (cli/errors.ts) depend on them. Each value says when it is used.
//
// One code per meaning: a missing file, table, document or registry entry is NOT_FOUND wherever
// it is looked up; only a missing *model* has its own code (the fix differs: pull one). Anything
// the caller passed wrong is INVALID_ARGUMENT, whichever layer noticed.

export const ERROR_CODES = {
  // The caller's input: the CLI exits 2 for most of these (cli/errors.ts).
  INVALID_ARGUMENT: 'an argument, option, flag or input value is wrong; the message names which and why',
  INVALID_CONFIG: 'tinyforge.config.json (or TINYFORGE_* variables) has unknown keys or bad values',
  INVALID_DATA: 'dataset records failed validation (each named by file and line), or none is left to train on',
  FILE_EXISTS: 'the output already exists; pass --overwrite (or pick another path)',
  CONFIRMATION_REQUIRED: 'a destructive command needs --yes when no terminal can ask',
  UNSAFE_PATH: 'an output folder that overlaps its input, the registry, a root or the working folder',
  BASE_MISMATCH: 'the base model given is not the one the run was trained on (SHA-256 differs)',
  INPUT_TOO_LARGE: 'an input too large to read the way it is written (a huge JSON array: use JSONL)',
  AMBIGUOUS_ID: 'a registry id prefix that matches several artifacts',

  // Something named does not exist.
  NOT_FOUND: 'a file, folder, table, document or registry entry the caller named does not exist',
  MODEL_NOT_FOUND: 'no loadable model at the path (no config.json + weights, no .gguf, or no tokenizer): pull one',
  MODEL_UNAVAILABLE: 'pull: no source had the model; `attempts` says why each one failed',
  NO_CHECKPOINT: 'resume was asked for but the run folder has no checkpoint',
  MANIFEST_MISSING: 'a run or export folder without its tinyforge.json',

  // A file exists but its content is wrong.
  MODEL_CONFIG: 'config.json or the GGUF metadata is unreadable, incomplete or unsupported',
  MODEL_INVALID: 'model files that exist but cannot be read (damaged base model folder)',
  GGUF_INVALID: 'a malformed GGUF file (header, metadata, tensor table)',
  GGUF_UNSUPPORTED: 'a valid GGUF whose architecture, tensor type or tokenizer is not supported',
  WEIGHTS_MISSING: 'a tensor the architecture needs is absent or has the wrong shape',
  WEIGHTS_INVALID: 'safetensors files that exist but cannot be read',
  ADAPTER_INVALID: 'a PEFT adapter folder that is malformed or does not fit the model',
  RUN_INVALID: 'a training run folder whose tinyforge.json is missing or wrong for export',
  MANIFEST_INVALID: 'a tinyforge.json that is not valid',
  CHECKPOINT_CORRUPT: 'a checkpoint that cannot be read back (partial write, edited, wrong tensors)',
  CHECKPOINT_MISMATCH: 'a checkpoint from a different run (base model, data or hyperparameters differ)',
  TOKENIZER_LOAD: 'tokenizer.json (or tokenizer_config.json) cannot be read or parsed',
  CHAT_TEMPLATE_MISSING: 'chat messages given to a tokenizer that has no chat template',
  CHAT_TEMPLATE: 'the chat template failed to parse or render (including its raise_exception)',
  DATA_READ: 'the training data file cannot be read at all',
  FILE_CHANGED: 'a file changed while it was being read',
  ONNX_GRAPH_INVALID: 'an ONNX graph that breaks a rule checked before writing (names the node or value)',
  ONNX_MODEL_TOO_LARGE: 'an ONNX model over the 2 GiB protobuf limit',
  ONNX_READ: 'an ONNX model file that cannot be read',
  ONNX_DECODE: 'a file that is not a valid ONNX model',
  ONNX_MODEL_LOAD: 'ONNX Runtime refused to load the model',
  UNSUPPORTED_OUTPUT_TYPE: 'an ONNX output of an element type that cannot be returned to JS',

  // The work itself failed.
  TOKENIZE: 'encoding or decoding failed inside the tokenizer',
  MODEL_COMPUTE: 'a tensor operation of the model failed',
  TRAIN_COMPUTE: 'a tensor operation of training failed',
  TRAIN_DIVERGED: 'the loss became NaN or infinite; lower the learning rate',
  INFERENCE_FAILED: 'an ONNX Runtime run failed',
  EXPORT_CHECK_FAILED: 'the exported ONNX model failed its check against the source model',
  VALIDATION_WORKER_FAILED: 'a dataset validation worker thread failed',

  // The environment: files, libraries, services.
  WRITE_FAILED: 'writing an output (run folder, model, ONNX file, tokenizer) failed',
  ORT_LIBRARY_NOT_FOUND: 'the ONNX Runtime shared library is missing (onnxruntime-node not installed)',
  ORT_LIBRARY_LOAD: 'the ONNX Runtime library exists but cannot be loaded (wrong version or platform)',
  ORT_NOT_INITIALIZED: 'ONNX Runtime was used before it was loaded',
  NATIVE_UNAVAILABLE: 'the native core (@tinyforge/native) cannot be loaded, or lacks a feature',
  SESSION_CLOSED: 'the inference session was closed before or while the request ran',
  REGISTRY_UNAVAILABLE: 'the registry database cannot be opened',
  REGISTRY_TOO_NEW: 'the registry was written by a newer TinyForge',
  UNSAFE_DELETE: 'refused to delete a root, home or working folder',
  DB_ERROR: 'a SQLite or PostgreSQL source failed (query, permissions, connection)',
  GDOCS_NO_CREDENTIALS: 'no usable Google credentials',
  GDOCS_UNAUTHORIZED: 'Google rejected the credentials (401)',
  GDOCS_FORBIDDEN: 'the account has no access to the document or folder (403)',
  GDOCS_RATE_LIMITED: 'Google rate limits still apply after retries (429)',
  GDOCS_UNAVAILABLE: 'Google cannot be reached or answered 5xx',
  GDOCS_HTTP_ERROR: 'Google answered another 4xx',

  // Control flow and bugs.
  ABORTED: 'the user or an AbortSignal stopped the work (training writes a checkpoint first); exit 130',
  PANIC: 'a bug in the native core: a Rust panic, caught and turned into this error',
  INVALID_STATE: 'a bug: a native task was run twice',
  NATIVE_ERROR: 'an error from napi itself, without one of our codes',
  UNEXPECTED: 'an error without any code (a bug); the CLI prints its stack with LOG_LEVEL=debug',
} as const satisfies Record<string, string>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}
