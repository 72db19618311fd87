//! Errors of the ONNX writer/reader. Each variant has a stable code (`OnnxError::code`) that the
//! binding passes to JS unchanged.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The graph breaks an ONNX rule we check before writing (undefined value, bad initializer
    /// size, missing opset import...). `reason` names the node/value involved.
    #[error("invalid ONNX graph `{graph}`: {reason}")]
    InvalidGraph { graph: String, reason: String },
    /// Protobuf messages are limited to 2 GiB; the `.onnx` without its external data must fit.
    #[error("ONNX model is {bytes} bytes, over the 2 GiB protobuf limit")]
    TooLarge { bytes: usize },
    #[error("cannot write ONNX model {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot read ONNX model {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// Loading or reading the model to export failed (its own code is kept).
    #[error(transparent)]
    Model(#[from] tinyforge_model::ModelError),
    #[error("not a valid ONNX model{}: {source}", path.as_ref().map(|p| format!(" ({})", p.display())).unwrap_or_default())]
    Decode { path: Option<PathBuf>, source: prost::DecodeError },
}

impl OnnxError {
    /// Stable SCREAMING_SNAKE code for this error (never changes between versions; listed in
    /// ts/error-codes.ts).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidGraph { .. } => "ONNX_GRAPH_INVALID",
            Self::TooLarge { .. } => "ONNX_MODEL_TOO_LARGE",
            Self::Write { .. } => "WRITE_FAILED",
            Self::Read { .. } => "ONNX_READ",
            Self::Decode { .. } => "ONNX_DECODE",
            Self::Model(e) => e.code(),
        }
    }
}
