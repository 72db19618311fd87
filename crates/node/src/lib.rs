//! The only crate that knows JavaScript: thin `#[napi]` wrappers over the compute crates.
use napi_derive::napi;

#[napi]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
