//! The train crate's errors, grouped by what the user has to fix. `TrainError::code` is the stable
//! code the binding passes to JS unchanged.
use std::path::PathBuf;

/// One bad dataset record: where it is and why it was rejected.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecordIssue {
    pub file: PathBuf,
    /// 1-based line number in the JSONL file.
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for RecordIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Options that contradict each other or are out of range.
    #[error("invalid training option `{field}`: {reason}")]
    Options { field: String, reason: String },

    /// The data file cannot be read at all.
    #[error("cannot read data {path}: {reason}")]
    DataRead { path: PathBuf, reason: String },

    /// Records failed validation and `skip_invalid` is off: every issue, one per line.
    #[error("{} invalid record(s) (use skipInvalid to train without them):\n{}", .0.len(), list_issues(.0))]
    DataInvalid(Vec<RecordIssue>),

    /// Nothing left to train on (all records invalid, truncated away, or an empty file).
    #[error("no trainable examples: {0}")]
    DataEmpty(String),

    /// A checkpoint that cannot be read back (partial write, edited, wrong tensors).
    #[error("corrupt checkpoint {path}: {reason}")]
    CheckpointCorrupt { path: PathBuf, reason: String },

    /// A checkpoint from a different run (base model, data or hyperparameters differ).
    #[error("checkpoint {path} belongs to a different run: {reason}")]
    CheckpointMismatch { path: PathBuf, reason: String },

    /// `resume` was asked for but the run folder has no checkpoint.
    #[error("nothing to resume: {path} has no checkpoint")]
    NoCheckpoint { path: PathBuf },

    /// A PEFT adapter folder that is malformed or does not fit the model.
    #[error("invalid adapter {path}: {reason}")]
    Adapter { path: PathBuf, reason: String },

    /// Writing the run folder failed.
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },

    /// The run was cancelled at a step boundary; a resumable checkpoint was written first.
    #[error("training aborted at step {step}; resume from {checkpoint}")]
    Aborted { step: usize, checkpoint: PathBuf },

    /// The loss became NaN or infinite.
    #[error("loss diverged (non-finite) at step {step}; lower the learning rate")]
    Diverged { step: usize },

    #[error(transparent)]
    Model(#[from] tinyforge_model::ModelError),

    #[error(transparent)]
    Tokenizer(#[from] tinyforge_tokenizer::TokenizerError),

    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

impl TrainError {
    /// Stable SCREAMING_SNAKE code for the JS side (listed in ts/error-codes.ts). Wrapped errors
    /// keep the code of the crate that raised them.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Options { .. } => "INVALID_ARGUMENT",
            Self::DataRead { .. } => "DATA_READ",
            Self::DataInvalid(_) | Self::DataEmpty(_) => "INVALID_DATA",
            Self::CheckpointCorrupt { .. } => "CHECKPOINT_CORRUPT",
            Self::CheckpointMismatch { .. } => "CHECKPOINT_MISMATCH",
            Self::NoCheckpoint { .. } => "NO_CHECKPOINT",
            Self::Adapter { .. } => "ADAPTER_INVALID",
            Self::Write { .. } => "WRITE_FAILED",
            Self::Aborted { .. } => "ABORTED",
            Self::Diverged { .. } => "TRAIN_DIVERGED",
            Self::Model(e) => e.code(),
            Self::Tokenizer(e) => e.code(),
            Self::Candle(_) => "TRAIN_COMPUTE",
        }
    }

    pub(crate) fn options(field: &str, reason: impl Into<String>) -> Self {
        Self::Options { field: field.into(), reason: reason.into() }
    }

    pub(crate) fn write(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        Self::Write { path: path.into(), reason: reason.to_string() }
    }
}

fn list_issues(issues: &[RecordIssue]) -> String {
    issues.iter().map(|i| format!("  {i}")).collect::<Vec<_>>().join("\n")
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::TrainError;
    use tinyforge_tokenizer::TokenizerError;

    #[test]
    fn wrapped_errors_keep_the_inner_code() {
        let tok = TrainError::from(TokenizerError::NoChatTemplate { looked_in: "tokenizer_config.json".into() });
        assert_eq!(tok.code(), "CHAT_TEMPLATE_MISSING");
        let model = TrainError::from(tinyforge_model::ModelError::NotFound { path: "/nope".into(), reason: "absent".into() });
        assert_eq!(model.code(), "MODEL_NOT_FOUND");
    }
}
