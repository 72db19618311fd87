//! The generate crate's errors. `code()` gives the stable JS code; wrapped errors (tokenizer,
//! decoder) forward the inner code.
use std::fmt;

/// An error from a `Decoder` implementation (candle, ONNX Runtime) with its own stable code.
pub trait CodedError: std::error::Error + Send + Sync + 'static {
    fn code(&self) -> &'static str;
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A sampling option or request field out of range; `field` is the camelCase option name.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },

    /// The prompt leaves no room to generate in the model's context window.
    #[error("the prompt has {prompt_tokens} tokens; the context window holds {context_len} (generation needs at least one free position)")]
    PromptTooLong { prompt_tokens: usize, context_len: usize },

    /// Chat template or tokenization failures.
    #[error(transparent)]
    Tokenizer(#[from] tinyforge_tokenizer::TokenizerError),

    /// The decoder (the model's forward pass) failed.
    #[error("decoder: {0}")]
    Decoder(DecoderFailure),
}

/// A boxed decoder error that keeps its code.
#[derive(Debug)]
pub struct DecoderFailure(pub Box<dyn CodedError>);

impl fmt::Display for DecoderFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl GenerateError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid { field, reason: reason.into() }
    }

    pub fn decoder(e: impl CodedError) -> Self {
        Self::Decoder(DecoderFailure(Box::new(e)))
    }

    /// Stable SCREAMING_SNAKE code for the JS side.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { .. } | Self::PromptTooLong { .. } => "INVALID_ARGUMENT",
            Self::Tokenizer(e) => e.code(),
            Self::Decoder(e) => e.0.code(),
        }
    }
}

pub type Result<T, E = GenerateError> = std::result::Result<T, E>;
