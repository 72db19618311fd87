//! The training loop, independent of the model behind `TrainableLm`.
//!
//! One optimizer step = `grad_accum` micro-batches (fewer at the end of an epoch). The loss of a
//! step is the mean over every labelled token of all its micro-batches (each micro-batch's
//! summed NLL is divided by the step's token count before `backward`), so accumulation gives the
//! same gradient as one big batch. Then global-norm clipping, AdamW at the warmup+cosine rate,
//! evaluation every `eval_every` steps (loss and perplexity over the eval set, dropout off),
//! optional early stopping, a metrics line, a progress event, and a checkpoint every
//! `checkpoint_every` steps. The cancel flag is read at step boundaries: a cancelled run saves a
//! checkpoint there and returns `TrainError::Aborted`, and resuming it continues the identical
//! loss sequence (same parameters, moments, batch order and dropout stream).
use std::{
    collections::BTreeMap,
    io::Write,
    path::Path,
    sync::atomic::{AtomicBool, Ordering},
    time::Instant,
};

use candle_core::backprop::GradStore;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tinyforge_model::kernels::sharing_pool;

use crate::{
    batches::{Batch, PURPOSE_DROPOUT, epoch_batches, make_batch},
    checkpoint::{self, RngState, TrainState},
    data::Example,
    error::{Result, TrainError},
    trainable::TrainableLm,
    optim::{AdamW, AdamWParams, GradAccumulator, clip_grad_norm},
    schedule::CosineSchedule,
};

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

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvalResult {
    pub loss: f64,
    pub perplexity: f64,
}

/// One progress event per optimizer step.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub step: usize,
    pub total_steps: usize,
    /// Epochs done, fractional (1.5 = halfway through the second).
    pub epoch: f64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub tokens_per_second: f64,
    pub elapsed_seconds: f64,
    pub eta_seconds: f64,
    pub eval: Option<EvalResult>,
}

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

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoopOutcome {
    pub steps: usize,
    pub total_steps: usize,
    /// Every step of the run, including those before a resume.
    pub history: Vec<StepRecord>,
    pub final_eval: Option<EvalResult>,
    pub tokens_seen: u64,
    pub tokens_per_second: f64,
    pub seconds: f64,
    pub stopped_early: bool,
    pub resumed_from: Option<usize>,
}

/// Each micro-batch is split into this many lanes (groups of rows) that run forward and backward
/// as independent graphs in parallel (each lane draws dropout masks from its own stream), their
/// losses and gradients added in lane order. Within one graph, the GEMMs and fused kernels
/// use both cores but candle's graph bookkeeping and elementwise ops run on one: two graphs side
/// by side keep both cores busy through those parts too. The count is fixed (not the number of
/// threads), so a run gives the same loss sequence on every machine.
pub const LANES: usize = 2;

/// The lanes of one micro-batch: its rows split in order into up to `LANES` padded batches.
pub fn lane_batches(rows: &[&Example], pad_id: u32) -> candle_core::Result<Vec<Batch>> {
    rows.chunks(rows.len().div_ceil(LANES).max(1)).map(|lane| make_batch(lane, pad_id)).collect()
}

/// Forward and backward of every lane: summed NLL and the gradients of `loss / denom`, in lane order.
fn run_lanes(model: &dyn TrainableLm, lanes: &[Batch], denom: f64) -> Result<Vec<(f64, GradStore)>> {
    let one = |batch: &Batch| -> Result<(f64, GradStore)> {
        let loss = model.loss_sum(batch, true)?;
        let sum = f64::from(loss.to_scalar::<f32>()?);
        Ok((sum, (loss / denom)?.backward()?))
    };
    let n = lanes.len();
    lanes.par_iter().enumerate().map(|(i, batch)| crate::lora::in_lane(i, || sharing_pool(n, || one(batch)))).collect()
}

/// Mean NLL and perplexity of `eval` (no dropout, fast forward path).
pub fn evaluate(model: &dyn TrainableLm, eval: &[Example], batch_size: usize, pad_id: u32) -> Result<Option<EvalResult>> {
    if eval.is_empty() {
        return Ok(None);
    }
    model.set_dropout_seed(None);
    let mut order: Vec<&Example> = eval.iter().collect();
    order.sort_by_key(|e| e.ids.len());
    let (mut sum, mut n) = (0f64, 0usize);
    for chunk in order.chunks(batch_size) {
        let lanes = lane_batches(chunk, pad_id)?;
        let n_lanes = lanes.len();
        let sums: Vec<Result<f32>> =
            lanes.par_iter().map(|b| sharing_pool(n_lanes, || Ok(model.loss_sum(b, false)?.to_scalar::<f32>()?))).collect();
        for (lane, lane_sum) in lanes.iter().zip(sums) {
            sum += f64::from(lane_sum?);
            n += lane.label_tokens;
        }
    }
    let loss = sum / n.max(1) as f64;
    Ok(Some(EvalResult { loss, perplexity: loss.exp() }))
}

/// Runs (or resumes) training; `run_dir` receives `metrics.jsonl` and `checkpoints/`.
#[allow(clippy::too_many_arguments)]
pub fn run_loop(
    model: &dyn TrainableLm,
    train: &[Example],
    eval: &[Example],
    cfg: &LoopConfig,
    run_dir: &Path,
    mut fingerprint: BTreeMap<String, Value>,
    resume: bool,
    on_progress: &mut (dyn FnMut(&Progress) + Send),
    cancel: &AtomicBool,
) -> Result<LoopOutcome> {
    if train.is_empty() {
        return Err(TrainError::DataEmpty("the training split is empty".into()));
    }
    fingerprint.insert("loop".into(), serde_json::to_value(cfg).expect("config serializes"));
    fingerprint.insert("trainExamples".into(), json!(train.len()));
    fingerprint.insert("evalExamples".into(), json!(eval.len()));
    let ckpt_root = run_dir.join("checkpoints");
    let metrics_path = run_dir.join("metrics.jsonl");
    let vars: Vec<_> = model.parameters().iter().map(|(_, v)| v.clone()).collect();
    let decay = model.parameters().iter().map(|(name, _)| crate::optim::decays(name)).collect();
    let mut opt = AdamW::with_decay_mask(vars.clone(), cfg.adamw, decay)?;
    let lengths: Vec<usize> = train.iter().map(|e| e.ids.len()).collect();
    let total = cfg.total_steps(train.len());
    let schedule = cfg.schedule(train.len());
    let batches_per_epoch = train.len().div_ceil(cfg.batch_size);

    let mut state = TrainState {
        step: 0,
        epoch: 0,
        cursor: 0,
        epoch_order: epoch_batches(&lengths, cfg.batch_size, cfg.seed, 0),
        rng: RngState { kind: "derived".into(), seed: cfg.seed, dropout_draws: 0 },
        best_eval_loss: None,
        evals_without_improvement: 0,
        tokens_seen: 0,
    };
    let mut history = Vec::new();
    let mut resumed_from = None;
    checkpoint::remove_partial(&ckpt_root);
    if resume {
        let (_, dir) = checkpoint::list(&ckpt_root)?.pop().ok_or_else(|| TrainError::NoCheckpoint { path: ckpt_root.clone() })?;
        state = checkpoint::load(&dir, &fingerprint, model.parameters(), &mut opt)?;
        history = read_history(&metrics_path, state.step)?;
        resumed_from = Some(state.step);
    }
    std::fs::create_dir_all(run_dir).map_err(|e| TrainError::write(run_dir, e))?;
    rewrite_history(&metrics_path, &history)?;
    let mut metrics =
        std::fs::OpenOptions::new().append(true).create(true).open(&metrics_path).map_err(|e| TrainError::write(&metrics_path, e))?;

    let started = Instant::now();
    let (mut session_tokens, mut session_steps) = (0u64, 0usize);
    let mut last_eval = None;
    let mut stopped_early = false;
    while state.step < total {
        if cancel.load(Ordering::Relaxed) {
            let dir = checkpoint::save(&ckpt_root, &state, &fingerprint, model.parameters(), &opt, cfg.keep_checkpoints)?;
            return Err(TrainError::Aborted { step: state.step, checkpoint: dir });
        }
        let end = (state.cursor + cfg.grad_accum).min(state.epoch_order.len());
        let micro: Vec<Vec<Batch>> = state.epoch_order[state.cursor..end]
            .iter()
            .map(|idx| lane_batches(&idx.iter().map(|&i| &train[i]).collect::<Vec<_>>(), cfg.pad_id))
            .collect::<candle_core::Result<_>>()?;
        let step_tokens: usize = micro.iter().flatten().map(|b| b.label_tokens).sum();
        let mut acc = GradAccumulator::new(vars.len());
        let mut loss_sum = 0f64;
        for lanes in &micro {
            model.set_dropout_seed(Some(crate::batches::derived_seed(cfg.seed, PURPOSE_DROPOUT, state.rng.dropout_draws)));
            state.rng.dropout_draws += 1;
            for (lane_loss, grads) in run_lanes(model, lanes, step_tokens.max(1) as f64)? {
                loss_sum += lane_loss;
                acc.add(&vars, &grads)?;
            }
            let input_tokens: usize = lanes.iter().map(|b| b.input_tokens).sum();
            state.tokens_seen += input_tokens as u64;
            session_tokens += input_tokens as u64;
        }
        let mut grads = acc.finish(&vars)?;
        let grad_norm = clip_grad_norm(&mut grads, cfg.max_grad_norm)?;
        let lr = schedule.lr(state.step);
        let loss = loss_sum / step_tokens.max(1) as f64;
        if !loss.is_finite() || !grad_norm.is_finite() {
            return Err(TrainError::Diverged { step: state.step + 1 });
        }
        opt.step(&grads, lr)?;
        state.step += 1;
        session_steps += 1;
        state.cursor = end;
        if state.cursor >= state.epoch_order.len() {
            state.epoch += 1;
            state.cursor = 0;
            state.epoch_order = epoch_batches(&lengths, cfg.batch_size, cfg.seed, state.epoch);
        }

        let want_eval = !eval.is_empty() && ((cfg.eval_every > 0 && state.step.is_multiple_of(cfg.eval_every)) || state.step == total);
        let eval_result = if want_eval { evaluate(model, eval, cfg.batch_size, cfg.pad_id)? } else { None };
        if let Some(e) = eval_result {
            last_eval = Some(e);
            if state.best_eval_loss.is_none_or(|b| e.loss < b) {
                state.best_eval_loss = Some(e.loss);
                state.evals_without_improvement = 0;
            } else {
                state.evals_without_improvement += 1;
            }
        }
        let epoch = state.epoch as f64 + state.cursor as f64 / batches_per_epoch as f64;
        let record = StepRecord {
            step: state.step,
            epoch,
            loss,
            lr,
            grad_norm,
            tokens: state.tokens_seen,
            eval_loss: eval_result.map(|e| e.loss),
            perplexity: eval_result.map(|e| e.perplexity),
        };
        writeln!(metrics, "{}", serde_json::to_string(&record).expect("record serializes"))
            .map_err(|e| TrainError::write(&metrics_path, e))?;
        history.push(record);
        let elapsed = started.elapsed().as_secs_f64();
        on_progress(&Progress {
            step: state.step,
            total_steps: total,
            epoch,
            loss,
            lr,
            grad_norm,
            tokens_per_second: session_tokens as f64 / elapsed.max(1e-9),
            elapsed_seconds: elapsed,
            eta_seconds: elapsed / session_steps as f64 * (total - state.step) as f64,
            eval: eval_result,
        });
        if cfg.early_stopping_patience.is_some_and(|p| state.evals_without_improvement >= p) {
            stopped_early = true;
            break;
        }
        if cfg.checkpoint_every > 0 && state.step.is_multiple_of(cfg.checkpoint_every) && state.step < total {
            checkpoint::save(&ckpt_root, &state, &fingerprint, model.parameters(), &opt, cfg.keep_checkpoints)?;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(LoopOutcome {
        steps: state.step,
        total_steps: total,
        history,
        final_eval: last_eval,
        tokens_seen: state.tokens_seen,
        tokens_per_second: session_tokens as f64 / seconds.max(1e-9),
        seconds,
        stopped_early,
        resumed_from,
    })
}

/// The metrics lines of steps `..=upto` (a resumed run drops what came after its checkpoint).
fn read_history(path: &Path, upto: usize) -> Result<Vec<StepRecord>> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(Vec::new()) };
    Ok(text.lines().filter_map(|l| serde_json::from_str::<StepRecord>(l).ok()).filter(|r| r.step <= upto).collect())
}

fn rewrite_history(path: &Path, history: &[StepRecord]) -> Result<()> {
    let text: String = history.iter().map(|r| serde_json::to_string(r).expect("record serializes") + "\n").collect();
    std::fs::write(path, text).map_err(|e| TrainError::write(path, e))
}
