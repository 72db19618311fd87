//! `metrics.jsonl`: one `StepRecord` line per optimizer step. A resumed run keeps the lines up to
//! its checkpoint's step and drops the rest (they belong to steps it is about to redo), so the
//! file always describes one unbroken run.
use std::{
    fs::File,
    io::Write,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

pub const METRICS_FILE: &str = "metrics.jsonl";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub step: usize,
    pub epoch: f64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub perplexity: Option<f64>,
}

/// The open metrics file of a run, appended to after every step.
pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Creates `run_dir` if needed and starts `metrics.jsonl` over with `history` (the steps a
    /// resumed run keeps; empty for a new run).
    pub fn open(run_dir: &Path, history: &[StepRecord]) -> Result<Self> {
        std::fs::create_dir_all(run_dir).map_err(|e| TrainError::write(run_dir, e))?;
        let path = run_dir.join(METRICS_FILE);
        let text: String = history.iter().map(|r| serde_json::to_string(r).expect("record serializes") + "\n").collect();
        std::fs::write(&path, text).map_err(|e| TrainError::write(&path, e))?;
        let file = std::fs::OpenOptions::new().append(true).open(&path).map_err(|e| TrainError::write(&path, e))?;
        Ok(Self { path, file })
    }

    pub fn append(&mut self, record: &StepRecord) -> Result<()> {
        writeln!(self.file, "{}", serde_json::to_string(record).expect("record serializes")).map_err(|e| TrainError::write(&self.path, e))
    }
}

/// The metrics lines of steps `..=upto` in `run_dir` (a resumed run drops what came after its
/// checkpoint); none when the file is absent.
pub fn read_history(run_dir: &Path, upto: usize) -> Vec<StepRecord> {
    let Ok(text) = std::fs::read_to_string(run_dir.join(METRICS_FILE)) else { return Vec::new() };
    text.lines().filter_map(|l| serde_json::from_str::<StepRecord>(l).ok()).filter(|r| r.step <= upto).collect()
}
