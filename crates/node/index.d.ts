export * from './binding';

import type { ChatMessage, InferEvent, InferOptions, InferResult, RuntimeInfo } from './binding';

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

/** Per-call controls of `InferenceSession.generate` / `stream` / `infer`. */
export interface InferCallOptions {
  /** Called with each token's delta as it is generated. */
  onDelta?: (event: InferEvent) => void;
  /** Aborting stops the generation at the next decode step; it resolves with finishReason 'cancelled'. */
  signal?: AbortSignal;
}

declare module './binding' {
  interface InferenceSession {
    /** Generates to the end; rejects with a coded error (INVALID_ARGUMENT, ...). */
    generate(prompt: string | Array<ChatMessage>, options?: InferOptions, call?: InferCallOptions): Promise<InferResult>;
    /** Yields one `delta` event per token; the iterator's return value is the result. Breaking out cancels. */
    stream(prompt: string | Array<ChatMessage>, options?: InferOptions, call?: { signal?: AbortSignal }): AsyncGenerator<InferEvent, InferResult, void>;
  }
}

/**
 * Generates with the export folder `dir`, loading its `InferenceSession` on first use and keeping
 * it for later calls with the same folder (`threads` applies to that first load).
 */
export declare function infer(
  dir: string,
  prompt: string | Array<ChatMessage>,
  options?: InferOptions & InferCallOptions & { threads?: number }
): Promise<InferResult>;
