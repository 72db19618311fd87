'use strict';
// Hand-written entry of @tinyforge/native. It wraps the generated napi loader (binding.cjs) so
// that every error thrown or rejected by the native core gets a stable `err.code`: the Rust side
// prefixes messages with `CODE: ` (see crates/node/src/error.rs) and this file moves the prefix
// into `code`. Errors without a prefix (type conversion errors from napi itself) get
// `code = 'INVALID_ARGUMENT'` unless napi already set one.
const binding = require('./binding.cjs');

const CODE_PREFIX = /^([A-Z][A-Z0-9_]{2,}): /;

function withCode(err) {
  if (err instanceof Error) {
    const m = CODE_PREFIX.exec(err.message);
    if (m) {
      err.code = m[1];
      err.message = err.message.slice(m[0].length);
    } else if (err.code === undefined || err.code === 'GenericFailure') {
      err.code = err.code === 'GenericFailure' ? 'NATIVE_ERROR' : 'INVALID_ARGUMENT';
    } else if (err.code === 'InvalidArg' || err.code === 'ObjectExpected' || err.code === 'StringExpected' || err.code === 'NumberExpected') {
      err.code = 'INVALID_ARGUMENT';
    }
  }
  return err;
}

function wrapFn(fn, self) {
  return function wrapped(...args) {
    let out;
    try {
      out = fn.apply(self === undefined ? this : self, args);
    } catch (err) {
      throw withCode(err);
    }
    if (out && typeof out.then === 'function') return out.then(undefined, (err) => { throw withCode(err); });
    return out;
  };
}

function wrapClass(Cls) {
  for (const key of Object.getOwnPropertyNames(Cls.prototype)) {
    if (key === 'constructor') continue;
    const desc = Object.getOwnPropertyDescriptor(Cls.prototype, key);
    if (desc && typeof desc.value === 'function') {
      Object.defineProperty(Cls.prototype, key, { ...desc, value: wrapFn(desc.value) });
    }
  }
  // napi-rs defines static methods (factories) non-writable and non-configurable, so they cannot
  // be replaced in place. Export a subclass that shadows each static with its wrapped twin;
  // `instanceof` still answers for instances the native factories create.
  const statics = Object.getOwnPropertyNames(Cls).filter((key) => {
    const desc = Object.getOwnPropertyDescriptor(Cls, key);
    return key !== 'prototype' && desc !== undefined && typeof desc.value === 'function';
  });
  if (statics.length === 0) return Cls;
  const Wrapped = class extends Cls {};
  Object.defineProperty(Wrapped, 'name', { value: Cls.name });
  Object.defineProperty(Wrapped, Symbol.hasInstance, { value: (obj) => obj instanceof Cls });
  for (const key of statics) {
    Object.defineProperty(Wrapped, key, { value: wrapFn(Cls[key], Cls), writable: true, configurable: true });
  }
  return Wrapped;
}

const wrappedClasses = new Map();
for (const [name, value] of Object.entries(binding)) {
  if (typeof value !== 'function') {
    module.exports[name] = value;
  } else if (/^[A-Z]/.test(name) && value.prototype) {
    // napi also exports each class under its Rust name (JsTokenizer = Tokenizer): wrap once.
    if (!wrappedClasses.has(value)) wrappedClasses.set(value, wrapClass(value));
    module.exports[name] = wrappedClasses.get(value);
  } else {
    module.exports[name] = wrapFn(value);
  }
}

// ---------------------------------------------------------------------------------------------
// ONNX Runtime library. The core loads ONNX Runtime dynamically (ort `load-dynamic`) from the
// `libonnxruntime.so.1` that the onnxruntime-node npm package ships. Its absolute path is
// resolved here, in JS, where package resolution lives, and handed to the core once, lazily,
// before the first `OnnxModel.load`. Success is cached; a failure is thrown again on each try
// (the core never hands a failed library to ort, so a retry after fixing the path is safe).
const path = require('node:path');
const fs = require('node:fs');

const ORT_LIB_IN_PACKAGE = 'bin/napi-v6/linux/x64/libonnxruntime.so.1';
const ORT_FIX_HINT =
  'Reinstall onnxruntime-node (npm install, which installs onnxruntime-node as a dependency of ' +
  '@tinyforge/native) or set TINYFORGE_ORT_LIB to the absolute path of libonnxruntime.so.1.';

function runtimeError(code, message) {
  const err = new Error(`${message} ${ORT_FIX_HINT}`);
  err.code = code;
  err.suggestion = ORT_FIX_HINT;
  return err;
}

// The onnxruntime-node package folder: from its package.json, else from its main file walking
// up to the folder whose package.json names it (in case a future version adds `exports`).
function onnxruntimeNodeDir() {
  try {
    return path.dirname(require.resolve('onnxruntime-node/package.json'));
  } catch {
    // fall through
  }
  let dir = path.dirname(require.resolve('onnxruntime-node'));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'onnxruntime-node') return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('onnxruntime-node has no package.json');
    dir = parent;
  }
}

/** Absolute path of the ONNX Runtime library to load (TINYFORGE_ORT_LIB wins). */
function ortLibraryPath() {
  const fromEnv = process.env.TINYFORGE_ORT_LIB;
  if (fromEnv) return path.resolve(fromEnv);
  let dir;
  try {
    dir = onnxruntimeNodeDir();
  } catch (cause) {
    throw runtimeError('ORT_LIBRARY_NOT_FOUND', `ONNX Runtime library not found: the onnxruntime-node package cannot be resolved from ${__dirname} (${cause.message}).`);
  }
  return path.join(dir, ORT_LIB_IN_PACKAGE);
}

let runtime = null;

/** Loads ONNX Runtime if not loaded yet; returns { version, libraryPath, apiVersion }. */
function ensureRuntime() {
  if (runtime) return runtime;
  const libraryPath = ortLibraryPath();
  try {
    runtime = module.exports.initRuntime(libraryPath);
  } catch (err) {
    if (err.code === 'ORT_LIBRARY_NOT_FOUND' || err.code === 'ORT_LIBRARY_LOAD') {
      err.message = `${err.message}. ${ORT_FIX_HINT}`;
      err.suggestion = ORT_FIX_HINT;
    }
    throw err;
  }
  return runtime;
}

/** The loaded ONNX Runtime, or null if none is loaded yet (does not load it). */
function runtimeInfo() {
  return runtime ?? module.exports.loadedRuntime() ?? null;
}

/** Makes `cls.load` load ONNX Runtime first (a failure becomes the returned promise's rejection). */
function loadWithRuntime(cls) {
  const nativeLoad = cls.load;
  Object.defineProperty(cls, 'load', {
    configurable: true,
    writable: true,
    value: function load(...args) {
      try {
        ensureRuntime();
      } catch (err) {
        return Promise.reject(err);
      }
      return nativeLoad.apply(this, args);
    },
  });
}

if (module.exports.OnnxModel) loadWithRuntime(module.exports.OnnxModel);

module.exports.ortLibraryPath = ortLibraryPath;
module.exports.ensureRuntime = ensureRuntime;
module.exports.runtimeInfo = runtimeInfo;

// ---------------------------------------------------------------------------------------------
// ONNX Runtime serving engine. The native `submit` streams events through a callback; here it
// becomes `generate()` (a promise, with `onDelta` per token), `stream()` (an async iterator of
// deltas whose `return` value is the result) and AbortSignal cancellation (the generation stops
// at the next decode step and resolves with finishReason 'cancelled').
if (module.exports.InferenceSession) {
  loadWithRuntime(module.exports.InferenceSession);
  // Instances come from the native factory, so methods go on the native prototype.
  const proto = binding.InferenceSession.prototype;

  const eventError = (e) => {
    const err = new Error(e.message ?? 'generation failed');
    err.code = e.code ?? 'NATIVE_ERROR';
    return err;
  };

  // Submits and calls `onEvent`; returns the native handle (or throws a coded error).
  const submit = (session, prompt, options, signal, onEvent) => {
    const handle = session.submit(prompt, options ?? {}, onEvent);
    if (signal) {
      if (signal.aborted) handle.cancel();
      else signal.addEventListener('abort', () => handle.cancel(), { once: true });
    }
    return handle;
  };

  Object.defineProperty(proto, 'generate', {
    configurable: true,
    writable: true,
    value: function generate(prompt, options = {}, { onDelta, signal } = {}) {
      return new Promise((resolve, reject) => {
        try {
          submit(this, prompt, options, signal, (e) => {
            if (e.type === 'delta') onDelta?.(e);
            else if (e.type === 'done') resolve(e.result);
            else reject(eventError(e));
          });
        } catch (err) {
          reject(err);
        }
      });
    },
  });

  Object.defineProperty(proto, 'stream', {
    configurable: true,
    writable: true,
    value: async function* stream(prompt, options = {}, { signal } = {}) {
      const queue = [];
      let wake = null;
      const push = (e) => {
        queue.push(e);
        wake?.();
        wake = null;
      };
      const handle = submit(this, prompt, options, signal, push);
      try {
        for (;;) {
          while (queue.length === 0) await new Promise((r) => (wake = r));
          const e = queue.shift();
          if (e.type === 'delta') yield e;
          else if (e.type === 'done') return e.result;
          else throw eventError(e);
        }
      } finally {
        // A consumer that stops early (break, throw) frees the slot at the next step.
        handle.cancel();
      }
    },
  });

  // One session per export folder, loaded on first use.
  const sessions = new Map();
  module.exports.infer = async function infer(dir, prompt, options = {}) {
    const { threads, signal, onDelta, ...params } = options;
    const key = path.resolve(dir);
    let loading = sessions.get(key);
    if (!loading) {
      loading = module.exports.InferenceSession.load(key, threads === undefined ? {} : { threads });
      sessions.set(key, loading);
      loading.catch(() => sessions.delete(key));
    }
    const session = await loading;
    return session.generate(prompt, params, { onDelta, signal });
  };
}
