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
//!
//! `Trainer` holds one run: `new` sets it up (optimizer, first epoch's order), `resume` restores
//! the newest checkpoint, and `run` repeats the named steps `step` (one optimizer step),
//! `evaluate_if_due`, `record` (metrics line + progress event) and `checkpoint` until the last
//! step, early stopping or cancel, then `finish` sums it up.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
    time::Instant,
};

use candle_core::{Var, backprop::GradStore};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tinyforge_model::kernels::sharing_pool;

use crate::{
    batches::{Batch, epoch_batches},
    checkpoint::{self, RngState, TrainState},
    data::Example,
    epoch_plan::EpochPlan,
    error::{Result, TrainError},
    lanes::{LANES, in_lane, lane_batches},
    loop_config::LoopConfig,
    metrics::{MetricsLog, StepRecord, read_history},
    optim::{AdamW, GradAccumulator, clip_grad_norm},
    schedule::CosineSchedule,
    seeds::{PURPOSE_DROPOUT, derived_seed},
    trainable::TrainableLm,
};

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

/// Forward and backward of every lane: summed NLL and the gradients of `loss / denom`, in lane order.
fn run_lanes(model: &dyn TrainableLm, lanes: &[Batch], denom: f64) -> Result<Vec<(f64, GradStore)>> {
    let one = |batch: &Batch| -> Result<(f64, GradStore)> {
        let loss = model.loss_sum(batch, true)?;
        let sum = f64::from(loss.to_scalar::<f32>()?);
        Ok((sum, (loss / denom)?.backward()?))
    };
    let mut out = Vec::with_capacity(lanes.len());
    // `LANES` graphs alive at a time (see `lanes`): each round's are freed before the next starts.
    for (r, round) in lanes.chunks(LANES).enumerate() {
        let n = round.len();
        let done: Vec<Result<_>> =
            round.par_iter().enumerate().map(|(i, batch)| in_lane(r * LANES + i, || sharing_pool(n, || one(batch)))).collect();
        for lane in done {
            out.push(lane?);
        }
    }
    Ok(out)
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
        for round in lanes.chunks(LANES) {
            let k = round.len();
            let sums: Vec<Result<f32>> =
                round.par_iter().map(|b| sharing_pool(k, || Ok(model.loss_sum(b, false)?.to_scalar::<f32>()?))).collect();
            for (lane, lane_sum) in round.iter().zip(sums) {
                sum += f64::from(lane_sum?);
                n += lane.label_tokens;
            }
        }
    }
    let loss = sum / n.max(1) as f64;
    Ok(Some(EvalResult { loss, perplexity: loss.exp() }))
}

/// What one optimizer step measured.
#[derive(Debug, Clone, Copy)]
pub struct StepStats {
    /// Mean NLL over the step's labelled tokens.
    pub loss: f64,
    pub lr: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
}

/// One training run (or its resumption) over a model, its data and a run folder.
pub struct Trainer<'a> {
    model: &'a dyn TrainableLm,
    train: &'a [Example],
    eval: &'a [Example],
    cfg: &'a LoopConfig,
    run_dir: PathBuf,
    ckpt_root: PathBuf,
    fingerprint: BTreeMap<String, Value>,
    vars: Vec<Var>,
    opt: AdamW,
    /// Example lengths, for each epoch's length-bucketed order.
    lengths: Vec<usize>,
    /// Each epoch's members (all records and its slice of rehearsal passages).
    plan: EpochPlan,
    total: usize,
    schedule: CosineSchedule,
    state: TrainState,
    history: Vec<StepRecord>,
    resumed_from: Option<usize>,
    started: Instant,
    /// Tokens and steps of this process only (a resumed run's speed excludes earlier sessions).
    session_tokens: u64,
    session_steps: usize,
    last_eval: Option<EvalResult>,
    stopped_early: bool,
}

impl<'a> Trainer<'a> {
    /// Sets up a run at step 0; `run_dir` receives `metrics.jsonl` and `checkpoints/`. The
    /// fingerprint (what must match for a resume) gains the loop config and the split sizes.
    pub fn new(
        model: &'a dyn TrainableLm,
        train: &'a [Example],
        eval: &'a [Example],
        cfg: &'a LoopConfig,
        run_dir: &Path,
        mut fingerprint: BTreeMap<String, Value>,
    ) -> Result<Self> {
        if train.is_empty() {
            return Err(TrainError::DataEmpty("the training split is empty".into()));
        }
        fingerprint.insert("loop".into(), serde_json::to_value(cfg).expect("config serializes"));
        fingerprint.insert("trainExamples".into(), json!(train.len()));
        fingerprint.insert("evalExamples".into(), json!(eval.len()));
        let ckpt_root = run_dir.join("checkpoints");
        let vars: Vec<_> = model.parameters().iter().map(|(_, v)| v.clone()).collect();
        let decay = model.parameters().iter().map(|(name, _)| crate::optim::decays(name)).collect();
        let opt = AdamW::with_decay_mask(vars.clone(), cfg.adamw, decay)?;
        let lengths: Vec<usize> = train.iter().map(|e| e.ids.len()).collect();
        let plan = cfg.plan(train.len());
        let state = TrainState {
            step: 0,
            epoch: 0,
            cursor: 0,
            epoch_order: epoch_batches(&lengths, plan.members(cfg.seed, 0), cfg.batch_size, cfg.seed, 0),
            rng: RngState { kind: "derived".into(), seed: cfg.seed, dropout_draws: 0 },
            best_eval_loss: None,
            evals_without_improvement: 0,
            tokens_seen: 0,
        };
        checkpoint::remove_partial(&ckpt_root);
        Ok(Self {
            model,
            train,
            eval,
            cfg,
            run_dir: run_dir.to_path_buf(),
            ckpt_root,
            fingerprint,
            vars,
            opt,
            lengths,
            plan,
            total: cfg.total_steps(train.len()),
            schedule: cfg.schedule(train.len()),
            state,
            history: Vec::new(),
            resumed_from: None,
            started: Instant::now(),
            session_tokens: 0,
            session_steps: 0,
            last_eval: None,
            stopped_early: false,
        })
    }

    /// Restores parameters, optimizer, data cursor and RNG counters from the newest checkpoint,
    /// and the metrics history up to its step.
    pub fn resume(&mut self) -> Result<()> {
        let (_, dir) = checkpoint::list(&self.ckpt_root)?.pop().ok_or_else(|| TrainError::NoCheckpoint { path: self.ckpt_root.clone() })?;
        self.state = checkpoint::load(&dir, &self.fingerprint, self.model.parameters(), &mut self.opt)?;
        self.history = read_history(&self.run_dir, self.state.step);
        self.resumed_from = Some(self.state.step);
        Ok(())
    }

    /// Trains to the last step (or early stop). The cancel flag is read before each step: a
    /// cancelled run saves a checkpoint there and returns `TrainError::Aborted`.
    pub fn run(mut self, on_progress: &mut (dyn FnMut(&Progress) + Send), cancel: &AtomicBool) -> Result<LoopOutcome> {
        let mut metrics = MetricsLog::open(&self.run_dir, &self.history)?;
        self.started = Instant::now();
        while self.state.step < self.total {
            if cancel.load(Ordering::Relaxed) {
                let dir = self.checkpoint()?;
                return Err(TrainError::Aborted { step: self.state.step, checkpoint: dir });
            }
            let stats = self.step()?;
            let eval = self.evaluate_if_due()?;
            self.record(stats, eval, &mut metrics, on_progress)?;
            if self.cfg.early_stopping_patience.is_some_and(|p| self.state.evals_without_improvement >= p) {
                self.stopped_early = true;
                break;
            }
            if self.cfg.checkpoint_every > 0 && self.state.step.is_multiple_of(self.cfg.checkpoint_every) && self.state.step < self.total {
                self.checkpoint()?;
            }
        }
        Ok(self.finish())
    }

    /// One optimizer step: `grad_accum` micro-batches forward and backward, clipping, AdamW, and
    /// the data cursor moved on (into the next epoch's order when this one is used up).
    pub fn step(&mut self) -> Result<StepStats> {
        let (cfg, state) = (self.cfg, &mut self.state);
        let end = (state.cursor + cfg.grad_accum).min(state.epoch_order.len());
        let micro: Vec<Vec<Batch>> = state.epoch_order[state.cursor..end]
            .iter()
            .map(|idx| lane_batches(&idx.iter().map(|&i| &self.train[i]).collect::<Vec<_>>(), cfg.pad_id))
            .collect::<candle_core::Result<_>>()?;
        let step_tokens: usize = micro.iter().flatten().map(|b| b.label_tokens).sum();
        let mut acc = GradAccumulator::new(self.vars.len());
        let mut loss_sum = 0f64;
        for lanes in &micro {
            self.model.set_dropout_seed(Some(derived_seed(cfg.seed, PURPOSE_DROPOUT, state.rng.dropout_draws)));
            state.rng.dropout_draws += 1;
            for (lane_loss, grads) in run_lanes(self.model, lanes, step_tokens.max(1) as f64)? {
                loss_sum += lane_loss;
                acc.add(&self.vars, &grads)?;
            }
            let input_tokens: usize = lanes.iter().map(|b| b.input_tokens).sum();
            state.tokens_seen += input_tokens as u64;
            self.session_tokens += input_tokens as u64;
        }
        let mut grads = acc.finish(&self.vars)?;
        let grad_norm = clip_grad_norm(&mut grads, cfg.max_grad_norm)?;
        let lr = self.schedule.lr(state.step);
        let loss = loss_sum / step_tokens.max(1) as f64;
        if !loss.is_finite() || !grad_norm.is_finite() {
            return Err(TrainError::Diverged { step: state.step + 1 });
        }
        self.opt.step(&grads, lr)?;
        state.step += 1;
        self.session_steps += 1;
        state.cursor = end;
        if state.cursor >= state.epoch_order.len() {
            state.epoch += 1;
            state.cursor = 0;
            let members = self.plan.members(cfg.seed, state.epoch);
            state.epoch_order = epoch_batches(&self.lengths, members, cfg.batch_size, cfg.seed, state.epoch);
        }
        Ok(StepStats { loss, lr, grad_norm })
    }

    /// Evaluates when the step calls for it (every `eval_every` steps and after the last one) and
    /// updates the early-stopping count.
    pub fn evaluate_if_due(&mut self) -> Result<Option<EvalResult>> {
        let (cfg, state) = (self.cfg, &mut self.state);
        let due = (cfg.eval_every > 0 && state.step.is_multiple_of(cfg.eval_every)) || state.step == self.total;
        if self.eval.is_empty() || !due {
            return Ok(None);
        }
        let result = evaluate(self.model, self.eval, cfg.batch_size, cfg.pad_id)?;
        if let Some(e) = result {
            self.last_eval = Some(e);
            if state.best_eval_loss.is_none_or(|b| e.loss < b) {
                state.best_eval_loss = Some(e.loss);
                state.evals_without_improvement = 0;
            } else {
                state.evals_without_improvement += 1;
            }
        }
        Ok(result)
    }

    /// The step's metrics line and progress event.
    fn record(
        &mut self,
        stats: StepStats,
        eval: Option<EvalResult>,
        metrics: &mut MetricsLog,
        on_progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<()> {
        let state = &self.state;
        let epoch = state.epoch as f64 + state.cursor as f64 / state.epoch_order.len().max(1) as f64;
        let record = StepRecord {
            step: state.step,
            epoch,
            loss: stats.loss,
            lr: stats.lr,
            grad_norm: stats.grad_norm,
            tokens: state.tokens_seen,
            eval_loss: eval.map(|e| e.loss),
            perplexity: eval.map(|e| e.perplexity),
        };
        metrics.append(&record)?;
        self.history.push(record);
        let elapsed = self.started.elapsed().as_secs_f64();
        on_progress(&Progress {
            step: state.step,
            total_steps: self.total,
            epoch,
            loss: stats.loss,
            lr: stats.lr,
            grad_norm: stats.grad_norm,
            tokens_per_second: self.session_tokens as f64 / elapsed.max(1e-9),
            elapsed_seconds: elapsed,
            eta_seconds: elapsed / self.session_steps as f64 * (self.total - state.step) as f64,
            eval,
        });
        Ok(())
    }

    /// Saves a checkpoint of the current step (keeping the newest `keep_checkpoints`).
    pub fn checkpoint(&self) -> Result<PathBuf> {
        checkpoint::save(&self.ckpt_root, &self.state, &self.fingerprint, self.model.parameters(), &self.opt, self.cfg.keep_checkpoints)
    }

    /// The run's summary.
    pub fn finish(self) -> LoopOutcome {
        let seconds = self.started.elapsed().as_secs_f64();
        LoopOutcome {
            steps: self.state.step,
            total_steps: self.total,
            history: self.history,
            final_eval: self.last_eval,
            tokens_seen: self.state.tokens_seen,
            tokens_per_second: self.session_tokens as f64 / seconds.max(1e-9),
            seconds,
            stopped_early: self.stopped_early,
            resumed_from: self.resumed_from,
        }
    }
}
