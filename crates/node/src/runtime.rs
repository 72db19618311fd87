//! Binding of `tinyforge_infer::runtime`: load ONNX Runtime from an absolute library path.
//! `index.cjs` resolves that path (onnxruntime-node's `libonnxruntime.so.1`) and calls this once.
use std::path::Path;

use napi_derive::napi;
use tinyforge_infer as inf;

use crate::error::{core_error, guard};

/// The ONNX Runtime this process uses.
#[napi(object, js_name = "RuntimeInfo")]
pub struct JsRuntimeInfo {
    /// ONNX Runtime's version string, e.g. "1.30.0".
    pub version: String,
    /// The library file that is loaded (the first path that loaded; later calls do not switch).
    pub library_path: String,
    /// The ORT C API level the core was built for (the library supports at least this).
    pub api_version: u32,
}

impl From<inf::RuntimeInfo> for JsRuntimeInfo {
    fn from(info: inf::RuntimeInfo) -> Self {
        Self { version: info.version, library_path: info.library_path.display().to_string(), api_version: info.api_version }
    }
}

/// Loads ONNX Runtime from `libraryPath` (absolute). Idempotent. Throws `ORT_LIBRARY_NOT_FOUND`
/// (no file there) or `ORT_LIBRARY_LOAD` (not a loadable ONNX Runtime >= 1.27).
#[napi(catch_unwind)]
pub fn init_runtime(library_path: String) -> napi::Result<JsRuntimeInfo> {
    guard("loading ONNX Runtime", || inf::init_runtime(Path::new(&library_path)).map(Into::into).map_err(core_error))
}

/// The loaded runtime, or null when `initRuntime` has not succeeded yet.
#[napi(catch_unwind)]
pub fn loaded_runtime() -> napi::Result<Option<JsRuntimeInfo>> {
    guard("reading the loaded runtime", || Ok(inf::active_runtime().ok().map(Into::into)))
}

/// The ONNX Runtime session config entries TinyForge's own sessions set on this CPU, for running
/// an export elsewhere (transformers.js `session_options.extra`, Python
/// `SessionOptions.add_session_config_entry`) with the same numerics: `session.x64quantprecision`
/// = "1" on x86-64 CPUs without VNNI, where ORT's u8×s8 kernel would saturate the int8 export's
/// `MatMulInteger`; empty elsewhere.
#[napi]
#[must_use]
pub fn ort_session_config() -> std::collections::HashMap<String, String> {
    let mut config = std::collections::HashMap::new();
    if inf::decoder::needs_exact_int8_matmul() {
        config.insert(inf::decoder::X64_QUANT_PRECISION.to_string(), "1".to_string());
    }
    config
}
