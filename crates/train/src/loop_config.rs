//! The training loop's settings (`LoopConfig`): batch shape, length, learning rate and its
//! schedule, AdamW, clipping, evaluation, checkpoints, early stopping and the seed. Serialized
//! into the run's fingerprint, so a resume with different settings is refused.
use serde::Serialize;

use crate::{epoch_plan::EpochPlan, optim::AdamWParams, schedule::CosineSchedule};

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
    /// The last this-many training examples are rehearsal passages, partitioned over the epochs
    /// (`epoch_plan`). Left out of the fingerprint when 0, so runs without them resume as before.
    #[serde(skip_serializing_if = "is_zero")]
    pub rehearsal: usize,
}

// serde's skip_serializing_if takes a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &usize) -> bool {
    *n == 0
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
            rehearsal: 0,
        }
    }
}

impl LoopConfig {
    pub fn plan(&self, n_train: usize) -> EpochPlan {
        EpochPlan::new(n_train, self.rehearsal, self.epochs)
    }

    /// Optimizer steps of epoch `epoch` (a step never spans two epochs).
    pub fn steps_in_epoch(&self, n_train: usize, epoch: usize) -> usize {
        self.plan(n_train).size(epoch).div_ceil(self.batch_size).div_ceil(self.grad_accum)
    }

    /// Steps of the first epoch (with rehearsal, later ones may differ by one passage's batch).
    pub fn steps_per_epoch(&self, n_train: usize) -> usize {
        self.steps_in_epoch(n_train, 0)
    }

    pub fn total_steps(&self, n_train: usize) -> usize {
        self.max_steps.unwrap_or_else(|| (0..self.epochs).map(|e| self.steps_in_epoch(n_train, e)).sum())
    }

    pub fn schedule(&self, n_train: usize) -> CosineSchedule {
        let total = self.total_steps(n_train);
        CosineSchedule { base_lr: self.lr, warmup_steps: (total as f64 * self.warmup_ratio).round() as usize, total_steps: total }
    }
}
