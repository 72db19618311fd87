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

/// candle runs elementwise ops on its own pool whose threads spin at a barrier after each op,
/// beside rayon's pool that runs the GEMMs. With two cores, or any other load on the machine, a
/// spinning thread steals the core its partner needs: a LoRA step spent about half its CPU time
/// spinning. The hot elementwise work of training is in our own rayon kernels
/// (`tinyforge_model::llama::train_ops`), so candle's remaining small ops run inline on one
/// thread unless the user chose otherwise. Runs when Node loads the addon, before any candle op
/// creates that pool (it reads the variable once).
#[napi_derive::module_init]
fn init() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: runs while the addon is being loaded, before this library starts any thread.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
}
