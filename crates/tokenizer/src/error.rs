//! One error type for the tokenizer crate, grouped by what failed. Each variant has a stable code
//! (`TokenizerError::code`) that the binding and the crates wrapping this error pass on unchanged.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A tokenizer.json (or its tokenizer_config.json) could not be read or parsed.
    #[error("cannot load tokenizer from {path}: {reason}")]
    Load { path: PathBuf, reason: String },

    /// The GGUF file is unreadable or its `tokenizer.*` metadata is missing or malformed.
    #[error("invalid GGUF {path}: {reason}")]
    GgufInvalid { path: PathBuf, reason: String },

    /// The GGUF file is valid but describes a tokenizer this crate does not build.
    #[error("unsupported GGUF tokenizer in {path}: {reason}")]
    GgufUnsupported { path: PathBuf, reason: String },

    /// The model ships no chat template at all.
    #[error("this tokenizer has no chat template (looked in {looked_in})")]
    NoChatTemplate { looked_in: String },

    /// The chat template failed to parse or render (including `raise_exception` from the template).
    #[error("chat template: {0}")]
    ChatTemplate(String),

    /// Encoding or decoding failed inside the `tokenizers` crate.
    #[error("tokenize: {0}")]
    Tokenize(String),

    /// Writing the tokenizer out failed.
    #[error("cannot write {path}: {reason}")]
    Save { path: PathBuf, reason: String },
}

pub type Result<T> = std::result::Result<T, TokenizerError>;

impl TokenizerError {
    /// Stable SCREAMING_SNAKE code for this error (never changes between versions; listed in
    /// ts/error-codes.ts).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Load { .. } => "TOKENIZER_LOAD",
            Self::GgufInvalid { .. } => "GGUF_INVALID",
            Self::GgufUnsupported { .. } => "GGUF_UNSUPPORTED",
            Self::NoChatTemplate { .. } => "CHAT_TEMPLATE_MISSING",
            Self::ChatTemplate(_) => "CHAT_TEMPLATE",
            Self::Tokenize(_) => "TOKENIZE",
            Self::Save { .. } => "WRITE_FAILED",
        }
    }

    pub(crate) fn load(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        Self::Load { path: path.into(), reason: reason.to_string() }
    }

    pub(crate) fn gguf(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        Self::GgufInvalid { path: path.into(), reason: reason.to_string() }
    }

    pub(crate) fn tokenize(reason: impl ToString) -> Self {
        Self::Tokenize(reason.to_string())
    }
}
