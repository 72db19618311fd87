//! Errors of the inference crate. Every variant has a stable code (`InferError::code`) that the
//! binding passes to JS as `err.code`; messages name the file, input or output involved.
//! All fields are strings/paths so the runtime's one-time load outcome can be cached and cloned.
use std::path::PathBuf;

#[derive(Clone, Debug, thiserror::Error)]
pub enum InferError {
    #[error("ONNX Runtime library not found at {}: {reason}", path.display())]
    LibraryNotFound { path: PathBuf, reason: String },
    #[error("cannot load ONNX Runtime from {}: {reason}", path.display())]
    LibraryLoad { path: PathBuf, reason: String },
    #[error("ONNX Runtime is not loaded yet: call init_runtime(<absolute path of libonnxruntime.so.1>) first")]
    RuntimeNotInitialized,
    #[error("ONNX model not found: {}", path.display())]
    ModelNotFound { path: PathBuf },
    #[error("cannot load ONNX model {}: {reason}", path.display())]
    ModelLoad { path: PathBuf, reason: String },
    #[error("invalid session option `{option}`: {reason}")]
    InvalidOption { option: String, reason: String },
    #[error("invalid input `{name}`: {reason}")]
    InvalidInput { name: String, reason: String },
    #[error("ONNX Runtime run failed: {reason}")]
    Run { reason: String },
    #[error("output `{name}` has element type {elem_type}, which cannot be returned (supported: float32, int64, int32)")]
    UnsupportedOutput { name: String, elem_type: String },
}

impl InferError {
    /// Stable SCREAMING_SNAKE code for this error (never changes between versions; listed in
    /// ts/error-codes.ts). Bad options and inputs are the caller's to fix: INVALID_ARGUMENT.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::LibraryNotFound { .. } => "ORT_LIBRARY_NOT_FOUND",
            Self::LibraryLoad { .. } => "ORT_LIBRARY_LOAD",
            Self::RuntimeNotInitialized => "ORT_NOT_INITIALIZED",
            Self::ModelNotFound { .. } => "NOT_FOUND",
            Self::ModelLoad { .. } => "ONNX_MODEL_LOAD",
            Self::InvalidOption { .. } | Self::InvalidInput { .. } => "INVALID_ARGUMENT",
            Self::Run { .. } => "INFERENCE_FAILED",
            Self::UnsupportedOutput { .. } => "UNSUPPORTED_OUTPUT_TYPE",
        }
    }
}
