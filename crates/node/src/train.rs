//! `train(options, onProgress?, signal?)`: a training run on a libuv worker thread (AsyncTask),
//! so the event loop stays free. Progress events go through a non-blocking ThreadsafeFunction
//! (a slow listener drops events rather than stalling training). Aborting the signal sets the
//! core's cancel flag: the run stops at the next step boundary, writes a resumable checkpoint,
//! and the promise rejects with `code: 'ABORTED'` (the message names the checkpoint); run again
//! with `resume: true` to continue the same loss sequence.
use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use napi::{
    Env, Status, Task,
    bindgen_prelude::{AbortSignal, AsyncTask},
    threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode},
};
use napi_derive::napi;
use tinyforge_train as tt;

use crate::error::{core_error, guard, js_error};

/// Options of `train()`; every field but `base`, `data` and `out` is optional.
#[napi(object)]
pub struct JsTrainOptions {
    /// Base model: an HF folder (config.json, model.safetensors, tokenizer.json) or a .gguf file.
    pub base: String,
    /// JSONL training data (`{"input","output"}`, `{"messages"}` or `{"text"}` per line).
    pub data: String,
    /// Separate JSONL eval data (otherwise `evalSplit` of `data` is held out).
    pub eval_data: Option<String>,
    /// JSONL general-text records (`{"text"}`) trained alongside `data`, each once per run: every
    /// epoch trains all of `data` and its own slice of these (never held out for eval).
    pub rehearsal_data: Option<String>,
    /// Run folder to write (adapter/, tinyforge.json, metrics.jsonl, checkpoints/).
    pub out: String,
    /// @default 3
    pub epochs: Option<u32>,
    /// Overrides `epochs` when set.
    pub max_steps: Option<u32>,
    /// Peak learning rate. @default 2e-4
    pub lr: Option<f64>,
    /// @default 4
    pub batch_size: Option<u32>,
    /// @default 1
    pub grad_accum: Option<u32>,
    /// @default 8
    pub lora_r: Option<u32>,
    /// @default 16
    pub lora_alpha: Option<f64>,
    /// @default 0.05
    pub lora_dropout: Option<f64>,
    /// Scale alpha/√r instead of alpha/r. @default false
    pub use_rslora: Option<bool>,
    /// @default ["q_proj","k_proj","v_proj","o_proj"]
    #[allow(clippy::doc_link_with_quotes)] // a JSON default for the generated .d.ts, not a doc link
    pub target_modules: Option<Vec<String>>,
    /// Longer records are truncated (and counted). @default 512
    pub max_seq_len: Option<u32>,
    /// Fraction of `data` held out for eval when no `evalData`. @default 0.1
    pub eval_split: Option<f64>,
    /// Evaluate every N steps (0: at the end only). @default 0
    pub eval_every: Option<u32>,
    /// Checkpoint every N steps (0: only when aborted). @default 0
    pub checkpoint_every: Option<u32>,
    /// @default 42
    pub seed: Option<u32>,
    /// Continue from the newest checkpoint in `out`. @default false
    pub resume: Option<bool>,
    /// Train without bad records instead of refusing to start. @default false
    pub skip_invalid: Option<bool>,
    /// Fine-tune every weight (projections, embeddings, norms, head) and write a full model folder instead of an adapter. @default false
    pub full: Option<bool>,
    /// Validate data, report token statistics and the step count; train nothing. @default false
    pub dry_run: Option<bool>,
    /// Arithmetic of the frozen base weights: `auto` (bf16 where it beats f32: AMD CPUs with AVX512_BF16), `fp32` or `bf16`. @default "auto"
    pub precision: Option<String>,
    /// @default 0.05
    pub warmup_ratio: Option<f64>,
    /// @default 0.01
    pub weight_decay: Option<f64>,
    /// Global gradient-norm clip (0: off). @default 1
    pub max_grad_norm: Option<f64>,
    /// Stop after this many evaluations without improvement.
    pub early_stopping_patience: Option<u32>,
}

impl TryFrom<JsTrainOptions> for tt::TrainOptions {
    type Error = napi::Error;

    fn try_from(o: JsTrainOptions) -> napi::Result<Self> {
        let mut t = tt::TrainOptions::new(PathBuf::from(o.base), PathBuf::from(o.data), PathBuf::from(o.out));
        t.eval_data = o.eval_data.map(PathBuf::from);
        t.rehearsal_data = o.rehearsal_data.map(PathBuf::from);
        let l = &mut t.training;
        l.epochs = o.epochs.map_or(l.epochs, |v| v as usize);
        l.max_steps = o.max_steps.map(|v| v as usize);
        l.lr = o.lr.unwrap_or(l.lr);
        l.batch_size = o.batch_size.map_or(l.batch_size, |v| v as usize);
        l.grad_accum = o.grad_accum.map_or(l.grad_accum, |v| v as usize);
        l.eval_every = o.eval_every.map_or(l.eval_every, |v| v as usize);
        l.checkpoint_every = o.checkpoint_every.map_or(l.checkpoint_every, |v| v as usize);
        l.seed = o.seed.map_or(l.seed, u64::from);
        l.warmup_ratio = o.warmup_ratio.unwrap_or(l.warmup_ratio);
        l.adamw.weight_decay = o.weight_decay.unwrap_or(l.adamw.weight_decay);
        l.max_grad_norm = o.max_grad_norm.unwrap_or(l.max_grad_norm);
        l.early_stopping_patience = o.early_stopping_patience.map(|v| v as usize);
        let r = &mut t.lora;
        r.r = o.lora_r.map_or(r.r, |v| v as usize);
        r.alpha = o.lora_alpha.unwrap_or(r.alpha);
        r.dropout = o.lora_dropout.unwrap_or(r.dropout);
        r.use_rslora = o.use_rslora.unwrap_or(r.use_rslora);
        if let Some(m) = o.target_modules {
            r.target_modules = m;
        }
        t.max_seq_len = o.max_seq_len.map_or(t.max_seq_len, |v| v as usize);
        t.eval_split = o.eval_split.unwrap_or(t.eval_split);
        t.resume = o.resume.unwrap_or(false);
        t.skip_invalid = o.skip_invalid.unwrap_or(false);
        t.full = o.full.unwrap_or(false);
        t.dry_run = o.dry_run.unwrap_or(false);
        if let Some(p) = o.precision {
            t.precision = tinyforge_model::bf16::Precision::parse(&p).ok_or_else(|| {
                crate::error::core_error(tt::TrainError::Options {
                    field: "precision".into(),
                    reason: format!("must be auto, fp32 or bf16, got `{p}`"),
                })
            })?;
        }
        Ok(t)
    }
}

#[napi(object)]
pub struct JsTrainProgress {
    pub step: u32,
    pub total_steps: u32,
    /// Fractional epochs done.
    pub epoch: f64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub tokens_per_second: f64,
    pub elapsed_seconds: f64,
    pub eta_seconds: f64,
    /// Present on steps that evaluated.
    pub eval_loss: Option<f64>,
    pub perplexity: Option<f64>,
}

#[napi(object)]
pub struct JsRecordIssue {
    pub file: String,
    pub line: u32,
    pub reason: String,
}

#[napi(object)]
pub struct JsDataStats {
    pub records: u32,
    pub valid: u32,
    pub invalid: u32,
    pub truncated: u32,
    pub dropped_no_labels: u32,
    pub tokens: f64,
    pub label_tokens: f64,
    pub min_len: u32,
    pub max_len: u32,
    pub mean_len: f64,
}

#[napi(object)]
pub struct JsStepMetrics {
    pub step: u32,
    pub loss: f64,
    pub lr: f64,
    pub eval_loss: Option<f64>,
    pub perplexity: Option<f64>,
}

#[napi(object)]
pub struct JsTrainResult {
    pub run_dir: String,
    /// `adapter/` (LoRA) or `model/` (full); absent for a dry run.
    pub output_dir: Option<String>,
    pub manifest: Option<String>,
    pub dry_run: bool,
    pub data: JsDataStats,
    pub eval_data: Option<JsDataStats>,
    pub issues: Vec<JsRecordIssue>,
    pub train_examples: u32,
    pub eval_examples: u32,
    pub steps_per_epoch: u32,
    pub total_steps: u32,
    pub steps: u32,
    pub final_loss: Option<f64>,
    pub eval_loss: Option<f64>,
    pub perplexity: Option<f64>,
    pub tokens_per_second: f64,
    pub seconds: f64,
    pub stopped_early: bool,
    pub resumed_from: Option<u32>,
    /// One entry per step, including steps before a resume.
    pub history: Vec<JsStepMetrics>,
}

fn stats(s: &tt::data::DataStats) -> JsDataStats {
    JsDataStats {
        records: s.records as u32,
        valid: s.valid as u32,
        invalid: s.invalid as u32,
        truncated: s.truncated as u32,
        dropped_no_labels: s.dropped_no_labels as u32,
        tokens: s.tokens as f64,
        label_tokens: s.label_tokens as f64,
        min_len: s.min_len as u32,
        max_len: s.max_len as u32,
        mean_len: s.mean_len,
    }
}

fn result(r: tt::TrainReport) -> JsTrainResult {
    let path = |p: Option<PathBuf>| p.map(|p| p.display().to_string());
    let o = r.outcome.as_ref();
    JsTrainResult {
        run_dir: r.run_dir.display().to_string(),
        output_dir: path(r.output_dir),
        manifest: path(r.manifest),
        dry_run: r.dry_run,
        data: stats(&r.data),
        eval_data: r.eval_data.as_ref().map(stats),
        issues: r
            .issues
            .iter()
            .map(|i| JsRecordIssue { file: i.file.display().to_string(), line: i.line as u32, reason: i.reason.clone() })
            .collect(),
        train_examples: r.train_examples as u32,
        eval_examples: r.eval_examples as u32,
        steps_per_epoch: r.steps_per_epoch as u32,
        total_steps: r.total_steps as u32,
        steps: o.map_or(0, |o| o.steps as u32),
        final_loss: o.and_then(|o| o.history.last().map(|h| h.loss)),
        eval_loss: o.and_then(|o| o.final_eval.map(|e| e.loss)),
        perplexity: o.and_then(|o| o.final_eval.map(|e| e.perplexity)),
        tokens_per_second: o.map_or(0.0, |o| o.tokens_per_second),
        seconds: o.map_or(0.0, |o| o.seconds),
        stopped_early: o.is_some_and(|o| o.stopped_early),
        resumed_from: o.and_then(|o| o.resumed_from.map(|s| s as u32)),
        history: o
            .map(|o| {
                o.history
                    .iter()
                    .map(|h| JsStepMetrics {
                        step: h.step as u32,
                        loss: h.loss,
                        lr: h.lr,
                        eval_loss: h.eval_loss,
                        perplexity: h.perplexity,
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

type ProgressFn = ThreadsafeFunction<JsTrainProgress, (), JsTrainProgress, Status, false>;

pub struct TrainTask {
    options: Option<tt::TrainOptions>,
    on_progress: Option<ProgressFn>,
    cancel: Arc<AtomicBool>,
}

impl Task for TrainTask {
    type Output = tt::TrainReport;
    type JsValue = JsTrainResult;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let options = self.options.take().ok_or_else(|| js_error("INVALID_STATE", "train task ran twice"))?;
        crate::keep_freed_memory();
        let tsfn = self.on_progress.take();
        let mut on_progress = |p: &tt::Progress| {
            if let Some(f) = &tsfn {
                let event = JsTrainProgress {
                    step: p.step as u32,
                    total_steps: p.total_steps as u32,
                    epoch: p.epoch,
                    loss: p.loss,
                    lr: p.lr,
                    grad_norm: p.grad_norm,
                    tokens_per_second: p.tokens_per_second,
                    elapsed_seconds: p.elapsed_seconds,
                    eta_seconds: p.eta_seconds,
                    eval_loss: p.eval.map(|e| e.loss),
                    perplexity: p.eval.map(|e| e.perplexity),
                };
                f.call(event, ThreadsafeFunctionCallMode::NonBlocking);
            }
        };
        guard("training", || tt::train(&options, &mut on_progress, &self.cancel).map_err(core_error))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(result(output))
    }
}

/// Trains a LoRA adapter (or, with `full`, every weight) on a Rust thread. Resolves with the
/// run's summary; rejects with a coded error (`INVALID_DATA` lists every bad record by line,
/// `ABORTED` after the signal fired and a checkpoint was written, `CHECKPOINT_MISMATCH`, ...).
#[napi(catch_unwind, ts_return_type = "Promise<JsTrainResult>")]
pub fn train(
    options: JsTrainOptions,
    #[napi(ts_arg_type = "(progress: JsTrainProgress) => void")] on_progress: Option<ProgressFn>,
    signal: Option<AbortSignal>,
) -> napi::Result<AsyncTask<TrainTask>> {
    let options = guard("reading training options", || tt::TrainOptions::try_from(options))?;
    let cancel = Arc::new(AtomicBool::new(false));
    if let Some(s) = &signal {
        let flag = cancel.clone();
        s.on_abort(move || flag.store(true, Ordering::Relaxed));
    }
    Ok(AsyncTask::with_optional_signal(TrainTask { options: Some(options), on_progress, cancel }, signal))
}
