export * from './binding';

import type { RuntimeInfo } from './binding';

/**
 * Absolute path of the ONNX Runtime library the core loads: `$TINYFORGE_ORT_LIB` if set, else
 * `bin/napi-v6/linux/x64/libonnxruntime.so.1` inside the installed onnxruntime-node package.
 * Throws `ORT_LIBRARY_NOT_FOUND` when onnxruntime-node cannot be resolved.
 */
export declare function ortLibraryPath(): string;
/**
 * Loads ONNX Runtime once (called by `OnnxModel.load` automatically). Throws
 * `ORT_LIBRARY_NOT_FOUND` / `ORT_LIBRARY_LOAD` (with `err.suggestion`) if the library is missing
 * or unusable.
 */
export declare function ensureRuntime(): RuntimeInfo;
/** The loaded ONNX Runtime, or null when none is loaded yet (never loads it). */
export declare function runtimeInfo(): RuntimeInfo | null;
