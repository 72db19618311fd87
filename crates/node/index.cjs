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
  for (const key of Object.getOwnPropertyNames(Cls)) {
    const desc = Object.getOwnPropertyDescriptor(Cls, key);
    if (desc && typeof desc.value === 'function' && key !== 'prototype') {
      Object.defineProperty(Cls, key, { ...desc, value: wrapFn(desc.value, Cls) });
    }
  }
  return Cls;
}

for (const [name, value] of Object.entries(binding)) {
  if (typeof value !== 'function') {
    module.exports[name] = value;
  } else if (/^[A-Z]/.test(name) && value.prototype) {
    module.exports[name] = wrapClass(value);
  } else {
    module.exports[name] = wrapFn(value);
  }
}
