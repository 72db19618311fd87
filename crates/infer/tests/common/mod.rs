//! Shared by the integration tests: where the ONNX Runtime library is, and a loaded runtime.
//! (Each test binary uses a different subset of these helpers.)
#![allow(dead_code)]
use std::path::PathBuf;

/// `$ORT_DYLIB_PATH`, else the library `npm install` put in the repo's node_modules.
pub fn ort_library() -> PathBuf {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1");
    p.canonicalize().unwrap_or_else(|_| {
        panic!("ONNX Runtime library not found at {} (run `npm install` at the repo root or set ORT_DYLIB_PATH)", p.display())
    })
}

pub fn init() -> tinyforge_infer::RuntimeInfo {
    tinyforge_infer::init_runtime(&ort_library()).expect("ONNX Runtime loads")
}

/// A temporary folder removed when the guard drops, also when the test fails.
pub fn temp_dir(tag: &str) -> tinyforge_testkit::TempDir {
    tinyforge_testkit::temp_dir(&format!("infer-{tag}"))
}
