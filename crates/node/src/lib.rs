//! The only crate that knows JavaScript: thin `#[napi]` wrappers over the compute crates.
//! One file per core module; each function converts types, calls the core and maps errors once
//! (see `error.rs`). Every export is `catch_unwind` so a Rust panic becomes a JS error.
mod error;
mod model;
mod onnx;
mod runtime;
mod train;
mod tokenizer;
mod generate;

use napi_derive::napi;

/// Version of the native core (matches the npm package version).
#[napi(catch_unwind)]
pub fn native_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
