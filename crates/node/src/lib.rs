//! The only crate that knows JavaScript: thin `#[napi]` wrappers over the compute crates.
//! One file per core module; each function converts types, calls the core and maps errors once
//! (see `error.rs`). Work runs inside `error::guard`, and every export is `catch_unwind`, so a
//! Rust panic becomes a JS error (`PANIC`), never an abort.

// In the unit-test build nothing calls the `#[napi]` exports: Node reaches them through the
// cdylib's registration, which `cargo test` does not run.
#![cfg_attr(test, allow(dead_code))]
mod error;
mod export;
mod generate;
mod inference;
mod inference_score;
mod merge;
mod model;
mod onnx_graph;
mod onnx_session;
mod runtime;
mod sampling;
mod score;
mod tokenizer;
mod train;

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

/// A training step allocates and frees gigabytes of activation-sized buffers (1-10 MB each).
/// glibc's malloc serves blocks above its adaptive mmap threshold with fresh `mmap`s and gives
/// freed heap tops back to the kernel, so the next step page-faults the same memory in again,
/// zeroed by the kernel: profiles of a SmolLM2 LoRA step showed 15-20% of the CPU in
/// `clear_page` and fault handling. A fixed 32 MiB threshold (glibc's maximum) and a 1 GiB trim
/// threshold keep that memory in the process for reuse; the peak is unchanged.
///
/// Set when the first training starts, not when the addon loads: a serving process would keep
/// everything ONNX Runtime frees after building its session and heap-allocate its KV buffers
/// (calloc then clears recycled memory, touching every page). Measured on the SmolLM2 int8 export
/// (150 MB), `InferenceSession.load` with 8 slots: 1018 MB resident with the tunables set at
/// load, 310 MB without (408 MB after 8 concurrent generations).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn keep_freed_memory() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(set_malloc_tunables);
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_malloc_tunables() {
    unsafe extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_MMAP_THRESHOLD: i32 = -3;
    // SAFETY: mallopt only changes allocator tunables; both values are within glibc's ranges.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 32 << 20);
        mallopt(M_TRIM_THRESHOLD, 1 << 30);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn keep_freed_memory() {}
