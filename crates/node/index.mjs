// ESM entry of @tinyforge/native. index.cjs builds its exports in a loop (to attach error codes),
// which Node's CommonJS export detection cannot see, so the named exports are listed here.
// test/binding/esm-exports.test.ts fails when a native export is missing from this list.
import { createRequire } from 'node:module';

const native = createRequire(import.meta.url)('./index.cjs');

export default native;
export const {
  // classes
  Generator,
  InferHandle,
  InferenceSession,
  OnnxModel,
  Tokenizer,
  // functions
  createTinyModel,
  exportOnnx,
  generate,
  infer,
  initRuntime,
  loadedRuntime,
  mergeAdapter,
  modelInfo,
  modelLogits,
  nativeVersion,
  ortSessionConfig,
  train,
  writeOnnxModel,
  // ONNX Runtime library resolution (index.cjs)
  ensureRuntime,
  ortLibraryPath,
  runtimeInfo,
} = native;
