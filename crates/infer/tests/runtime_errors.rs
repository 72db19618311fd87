//! Runtime loading failures, in their own test binary (= own process): no test here may load
//! ONNX Runtime before the failures are checked, and the last step shows a failed pre-check does
//! not poison the process.
mod common;

use std::path::Path;

use tinyforge_infer::{OnnxSession, SessionOptions, active_runtime, init_runtime};

#[test]
fn failures_are_errors_and_a_corrected_path_still_loads() {
    assert_eq!(active_runtime().unwrap_err().code(), "ORT_NOT_INITIALIZED");
    let err = OnnxSession::load(Path::new("/tmp/any.onnx"), &SessionOptions::default()).err().unwrap();
    assert_eq!(err.code(), "ORT_NOT_INITIALIZED");

    let err = init_runtime(Path::new("/nonexistent/libonnxruntime.so.1")).unwrap_err();
    assert_eq!(err.code(), "ORT_LIBRARY_NOT_FOUND");
    assert!(err.to_string().contains("/nonexistent/libonnxruntime.so.1"), "{err}");

    let tmp = common::temp_dir("runtime-errors");
    let dir = tmp.path();
    let junk = dir.join("libonnxruntime.so.1");
    std::fs::write(&junk, b"#!/bin/sh\necho not a library\n").unwrap();
    assert_eq!(init_runtime(&junk).unwrap_err().code(), "ORT_LIBRARY_LOAD");
    assert_eq!(active_runtime().unwrap_err().code(), "ORT_NOT_INITIALIZED");

    let info = init_runtime(&common::ort_library()).unwrap();
    assert_eq!(active_runtime().unwrap(), info);
}
