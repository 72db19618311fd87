//! One training run end to end: options → tokenizer and data (validated, split) → model with
//! LoRA (or every weight trainable) → the loop → the run folder of DESIGN.md:
//! `adapter/` (PEFT) or `model/` (full fine-tune, an HF folder), `tinyforge.json`,
//! `metrics.jsonl`, `checkpoints/`. `dry_run` stops after the data: statistics and step count.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::atomic::AtomicBool,
};

use serde::Serialize;
use serde_json::json;
use tinyforge_model::{Llama, ModelFormat, bf16::Precision, detect_format, load_checkpoint};
use tinyforge_tokenizer::Tokenizer;

use crate::{
    adapter,
    batches::split_eval,
    checkpoint,
    data::{DataStats, Example, fill_length_stats, load_jsonl},
    error::{RecordIssue, Result, TrainError},
    hf_folder::write_hf_folder,
    loop_config::LoopConfig,
    lora::LoraConfig,
    manifest::{self, ManifestInput},
    trainable::{LlamaForTraining, TrainableLm},
    trainer::{LoopOutcome, Progress, Trainer},
};

// One field per `foremforge train` flag; several of them are on/off switches.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// An HF model folder or a GGUF file.
    pub base: PathBuf,
    pub data: PathBuf,
    /// A separate eval file; otherwise `eval_split` of `data` is held out.
    pub eval_data: Option<PathBuf>,
    /// General-text records trained alongside `data`, each once per run: the epochs share them
    /// out (`epoch_plan`), never held out for eval.
    pub rehearsal_data: Option<PathBuf>,
    pub out: PathBuf,
    pub lora: LoraConfig,
    /// Fine-tune every weight (projections, embeddings, norms, head) instead of LoRA.
    pub full: bool,
    pub max_seq_len: usize,
    pub eval_split: f64,
    pub resume: bool,
    pub skip_invalid: bool,
    pub dry_run: bool,
    /// Arithmetic of the frozen base projections in LoRA runs (`auto`: bf16 where it beats f32,
    /// `tinyforge_model::bf16::bf16_preferred`); full fine-tuning computes in f32.
    pub precision: Precision,
    pub training: LoopConfig,
}

impl TrainOptions {
    pub fn new(base: PathBuf, data: PathBuf, out: PathBuf) -> Self {
        Self {
            base,
            data,
            eval_data: None,
            rehearsal_data: None,
            out,
            lora: LoraConfig::default(),
            full: false,
            max_seq_len: 512,
            eval_split: 0.1,
            resume: false,
            skip_invalid: false,
            dry_run: false,
            precision: Precision::Auto,
            training: LoopConfig::default(),
        }
    }

    fn validate(&self) -> Result<()> {
        let t = &self.training;
        let bad = |f: &str, r: String| Err(TrainError::options(f, r));
        if t.batch_size == 0 {
            return bad("batchSize", "must be at least 1".into());
        }
        if t.grad_accum == 0 {
            return bad("gradAccum", "must be at least 1".into());
        }
        if !(t.lr > 0.0 && t.lr.is_finite()) {
            return bad("lr", format!("must be positive, got {}", t.lr));
        }
        if t.max_steps.is_none() && t.epochs == 0 {
            return bad("epochs", "must be at least 1 (or set maxSteps)".into());
        }
        if t.max_steps == Some(0) {
            return bad("maxSteps", "must be at least 1".into());
        }
        if self.max_seq_len < 2 {
            return bad("maxSeqLen", "must be at least 2".into());
        }
        if !(0.0..1.0).contains(&self.eval_split) {
            return bad("evalSplit", format!("must be in [0, 1), got {}", self.eval_split));
        }
        if !self.full {
            self.lora.validate().map_err(|(f, r)| TrainError::options(&f, r))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrainReport {
    pub run_dir: PathBuf,
    /// `adapter/` (LoRA) or `model/` (full fine-tune); `None` for a dry run.
    pub output_dir: Option<PathBuf>,
    pub manifest: Option<PathBuf>,
    pub dry_run: bool,
    pub data: DataStats,
    pub eval_data: Option<DataStats>,
    /// Bad records (skipped with `skip_invalid`; in a dry run, listed either way).
    pub issues: Vec<RecordIssue>,
    pub train_examples: usize,
    pub eval_examples: usize,
    pub steps_per_epoch: usize,
    pub total_steps: usize,
    pub outcome: Option<LoopOutcome>,
}

pub fn load_tokenizer(base: &Path, format: ModelFormat) -> Result<Tokenizer> {
    Ok(match format {
        ModelFormat::HfFolder => Tokenizer::from_file(base.join("tokenizer.json"))?,
        ModelFormat::Gguf => Tokenizer::from_gguf(base)?,
    })
}

// Read top to bottom as the run's stages (resolve, load, data, model, loop, write); splitting it
// would scatter one sequence over helpers with the same long argument lists.
#[allow(clippy::too_many_lines)]
pub fn train(opts: &TrainOptions, on_progress: &mut (dyn FnMut(&Progress) + Send), cancel: &AtomicBool) -> Result<TrainReport> {
    opts.validate()?;
    let format = detect_format(&opts.base)?;
    let tok = load_tokenizer(&opts.base, format)?;
    let data = load_jsonl(&opts.data, &tok, opts.max_seq_len)?;
    let eval_file = opts.eval_data.as_deref().map(|p| load_jsonl(p, &tok, opts.max_seq_len)).transpose()?;
    let rehearsal_file = opts.rehearsal_data.as_deref().map(|p| load_jsonl(p, &tok, opts.max_seq_len)).transpose()?;
    let mut issues = data.issues.clone();
    issues.extend(eval_file.iter().chain(&rehearsal_file).flat_map(|d| d.issues.iter().cloned()));
    if !issues.is_empty() && !opts.skip_invalid && !opts.dry_run {
        return Err(TrainError::DataInvalid(issues));
    }
    let (mut train_ex, eval_ex): (Vec<Example>, Vec<Example>) = match &eval_file {
        Some(e) => (data.examples.clone(), e.examples.clone()),
        None => split_eval(data.examples.clone(), opts.eval_split, opts.training.seed),
    };
    let mut training = opts.training.clone();
    if let Some(r) = &rehearsal_file
        && !train_ex.is_empty()
    {
        // Passages go last: the epoch plan takes the trailing `rehearsal` examples as passages.
        train_ex.extend(r.examples.iter().cloned());
        training.rehearsal = r.examples.len();
    }
    let mut report = TrainReport {
        run_dir: opts.out.clone(),
        output_dir: None,
        manifest: None,
        dry_run: opts.dry_run,
        data: data.stats.clone(),
        eval_data: eval_file.as_ref().map(|e| e.stats.clone()),
        issues,
        train_examples: train_ex.len(),
        eval_examples: eval_ex.len(),
        steps_per_epoch: training.steps_per_epoch(train_ex.len()),
        total_steps: training.total_steps(train_ex.len()),
        outcome: None,
    };
    if opts.dry_run {
        return Ok(report);
    }
    if train_ex.is_empty() {
        return Err(TrainError::DataEmpty(format!("{} has no valid record with a labelled response", opts.data.display())));
    }
    let ckpt_root = opts.out.join("checkpoints");
    if !opts.resume && !checkpoint::list(&ckpt_root)?.is_empty() {
        return Err(TrainError::options(
            "out",
            format!("{} already holds a run with checkpoints; resume it or choose another folder", opts.out.display()),
        ));
    }

    let base_sha = manifest::base_sha256(&opts.base, format)?;
    let ckpt = load_checkpoint(&opts.base)?;
    let mut llama = Llama::new(ckpt.config.clone(), &ckpt.weights)?;
    let precision = if opts.full { Precision::Fp32 } else { opts.precision.resolve() };
    llama.set_precision(precision)?;
    if tok.vocab_size() > ckpt.config.vocab_size {
        return Err(TrainError::options(
            "base",
            format!("tokenizer has {} tokens, the model {}", tok.vocab_size(), ckpt.config.vocab_size),
        ));
    }
    let model = if opts.full { LlamaForTraining::full(llama)? } else { LlamaForTraining::lora(llama, &opts.lora, opts.training.seed)? };

    let mut loop_cfg = training;
    loop_cfg.pad_id = tok.special_tokens().pad.or(tok.special_tokens().eos).unwrap_or(0);
    let mut fingerprint = BTreeMap::new();
    fingerprint.insert("baseSha256".into(), json!(base_sha));
    fingerprint.insert("dataSha256".into(), json!(data.sha256));
    fingerprint.insert("evalDataSha256".into(), json!(eval_file.as_ref().map(|e| e.sha256.clone())));
    if let Some(r) = &rehearsal_file {
        fingerprint.insert("rehearsalDataSha256".into(), json!(r.sha256));
    }
    fingerprint.insert("mode".into(), json!(if opts.full { "full" } else { "lora" }));
    if opts.full {
        // Full runs once trained the projections only; their checkpoints lack the embedding and
        // norm tensors, and this key makes resuming one a clear mismatch instead.
        fingerprint.insert("fullTrainable".into(), json!("all"));
    }
    fingerprint.insert("lora".into(), if opts.full { json!(null) } else { serde_json::to_value(&opts.lora).expect("serializes") });
    fingerprint.insert("maxSeqLen".into(), json!(opts.max_seq_len));
    // Resuming is bit-exact within one precision only, so it is part of the run's identity.
    fingerprint.insert("precision".into(), json!(precision.as_str()));
    fingerprint.insert("evalSplit".into(), json!(opts.eval_split));
    fingerprint.insert("skipInvalid".into(), json!(opts.skip_invalid));
    let hyperparameters = json!({ "fingerprint": &fingerprint, "training": &loop_cfg });

    // The loop runs on a worker of the pool the GEMMs and fused kernels use: called from any other
    // thread, each parallel op hands its job over and sleeps until it is done (a futex round trip
    // per op, thousands per step); on a worker the caller takes its share itself. 15-20% faster.
    let outcome = compute_pool()?.install(|| {
        let mut trainer = Trainer::new(&model, &train_ex, &eval_ex, &loop_cfg, &opts.out, fingerprint)?;
        if opts.resume {
            trainer.resume()?;
        }
        trainer.run(on_progress, cancel)
    })?;

    let output_dir = if opts.full {
        let dir = opts.out.join("model");
        write_full_model(&dir, &opts.base, format, &tok, &ckpt.config, ckpt.weights, &model)?;
        dir
    } else {
        let dir = opts.out.join("adapter");
        adapter::save_peft(&dir, &opts.lora, &opts.base.display().to_string(), model.parameters())?;
        dir
    };
    let mut stats = data.stats.clone();
    fill_length_stats(&mut stats, &train_ex);
    let metrics = json!({
        "steps": outcome.steps,
        "totalSteps": outcome.total_steps,
        "finalLoss": outcome.history.last().map(|r| r.loss),
        "evalLoss": outcome.final_eval.map(|e| e.loss),
        "perplexity": outcome.final_eval.map(|e| e.perplexity),
        "tokensSeen": outcome.tokens_seen,
        "tokensPerSecond": outcome.tokens_per_second,
        "seconds": outcome.seconds,
        "stoppedEarly": outcome.stopped_early,
        "resumedFrom": outcome.resumed_from,
    });
    let manifest_path = manifest::write(
        &opts.out,
        &ManifestInput {
            base: &opts.base,
            base_sha256: &base_sha,
            base_format: format,
            data: &opts.data,
            data_sha256: &data.sha256,
            data_stats: &stats,
            eval_data: eval_file.as_ref().map(|e| (e.path.as_path(), e.sha256.as_str())),
            hyperparameters,
            metrics,
            outputs: json!({ if opts.full { "model" } else { "adapter" }: output_dir.file_name().map(|n| n.to_string_lossy().into_owned()), "metrics": "metrics.jsonl", "checkpoints": "checkpoints" }),
        },
    )?;
    report.output_dir = Some(output_dir);
    report.manifest = Some(manifest_path);
    report.outcome = Some(outcome);
    Ok(report)
}

/// One rayon pool for training, sized like rayon's global one (`RAYON_NUM_THREADS`, else one thread per core).
fn compute_pool() -> Result<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<std::result::Result<rayon::ThreadPool, String>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new().thread_name(|i| format!("tinyforge-compute-{i}")).build().map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| TrainError::options("threads", format!("cannot start the compute threads: {e}")))
}

/// A full fine-tune's output: an HF folder (`hf_folder::write_hf_folder`) with every trained
/// weight in place of the base's and the base's config (a tied model stays tied: no
/// `lm_head.weight` is written).
pub fn write_full_model(
    dir: &Path,
    base: &Path,
    format: ModelFormat,
    tok: &Tokenizer,
    config: &tinyforge_model::LlamaConfig,
    mut weights: tinyforge_model::Weights,
    model: &LlamaForTraining,
) -> Result<()> {
    for (name, t) in model.merged_projections()? {
        weights.insert(name, t);
    }
    write_hf_folder(dir, base, format, config, weights, Some(tok))
}
