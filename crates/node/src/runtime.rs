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
