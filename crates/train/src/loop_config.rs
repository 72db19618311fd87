//! The training loop's settings (`LoopConfig`): batch shape, length, learning rate and its
//! schedule, AdamW, clipping, evaluation, checkpoints, early stopping and the seed. Serialized
//! into the run's fingerprint, so a resume with different settings is refused.
use serde::Serialize;

use crate::{optim::AdamWParams, schedule::CosineSchedule};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoopConfig {
    pub batch_size: usize,
    pub grad_accum: usize,
    pub epochs: usize,
    /// Overrides `epochs` when set.
    pub max_steps: Option<usize>,
    pub lr: f64,
    pub warmup_ratio: f64,
    pub adamw: AdamWParams,
    /// 0 turns clipping off.
    pub max_grad_norm: f64,
    /// Evaluate every N steps (0: only at the end).
    pub eval_every: usize,
    /// Checkpoint every N steps (0: only when cancelled).
    pub checkpoint_every: usize,
    /// Stop after this many evaluations without a lower eval loss.
    pub early_stopping_patience: Option<usize>,
    pub seed: u64,
    pub pad_id: u32,
    pub keep_checkpoints: usize,
}

impl Default for LoopConfig {
    fn default() -> Self {
        Self {
            batch_size: 4,
            grad_accum: 1,
            epochs: 3,
            max_steps: None,
            lr: 2e-4,
            warmup_ratio: 0.05,
            adamw: AdamWParams::default(),
            max_grad_norm: 1.0,
            eval_every: 0,
            checkpoint_every: 0,
            early_stopping_patience: None,
            seed: 42,
            pad_id: 0,
            keep_checkpoints: 2,
        }
    }
}

impl LoopConfig {
    pub fn steps_per_epoch(&self, n_train: usize) -> usize {
        n_train.div_ceil(self.batch_size).div_ceil(self.grad_accum)
    }

    pub fn total_steps(&self, n_train: usize) -> usize {
        self.max_steps.unwrap_or(self.epochs * self.steps_per_epoch(n_train))
    }

    pub fn schedule(&self, n_train: usize) -> CosineSchedule {
        let total = self.total_steps(n_train);
        CosineSchedule { base_lr: self.lr, warmup_steps: (total as f64 * self.warmup_ratio).round() as usize, total_steps: total }
    }
}
