//! The model crate's errors, grouped by what the user has to fix. Each variant has a stable
//! code (`ModelError::code`) that the binding passes to JS unchanged.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The path is neither an HF model folder nor a GGUF file.
    #[error("no model at {path}: {reason}")]
    NotFound { path: PathBuf, reason: String },

    /// config.json (or GGUF metadata) is unreadable, incomplete or unsupported.
    #[error("bad model config {path}: {reason}")]
    Config { path: PathBuf, reason: String },

    /// The GGUF file is malformed or uses an architecture/tensor we do not support.
    #[error("invalid GGUF {path}: {reason}")]
    GgufInvalid { path: PathBuf, reason: String },

    /// A tensor the architecture needs is absent (or has the wrong shape).
    #[error("weights missing or wrong: tensor `{name}`: {reason}")]
    WeightsMissing { name: String, reason: String },

    /// safetensors files that exist but cannot be read.
    #[error("cannot read weights {path}: {reason}")]
    Weights { path: PathBuf, reason: String },

    /// Creating a model folder (tiny model) failed.
    #[error("cannot write model to {path}: {reason}")]
    Write { path: PathBuf, reason: String },

    /// Invalid caller input (shapes, ids out of range, options).
    #[error("{0}")]
    Input(String),

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl ModelError {
    /// Stable SCREAMING_SNAKE code for the JS side (listed in ts/error-codes.ts).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "MODEL_NOT_FOUND",
            Self::Config { .. } => "MODEL_CONFIG",
            Self::GgufInvalid { .. } => "GGUF_INVALID",
            Self::WeightsMissing { .. } => "WEIGHTS_MISSING",
            Self::Weights { .. } => "WEIGHTS_INVALID",
            Self::Write { .. } => "WRITE_FAILED",
            Self::Input(_) => "INVALID_ARGUMENT",
            Self::Candle(_) => "MODEL_COMPUTE",
        }
    }
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
