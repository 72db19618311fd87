//! Resumable checkpoints: `checkpoints/step-000042/` holds the trainable parameters, the AdamW
//! moments, and `state.json` (step, epoch, data cursor with the epoch's batch order, the RNG
//! state, the run's fingerprint and the SHA-256 of both tensor files).
//!
//! Written atomically: everything goes to a temporary folder, each file is fsynced, the folder
//! is renamed into place and its parent fsynced, so a kill at any instant leaves either the
//! previous checkpoint or the new one, never half of one. The RNG state is (seed, step): every
//! random draw (epoch order, dropout masks) comes from a generator derived from the seed and a
//! counter, so restoring the step restores the stream exactly.
use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
};

use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{
    data::hex,
    error::{Result, TrainError},
    optim::AdamW,
};

const FORMAT: u32 = 1;
const STATE: &str = "state.json";
const PARAMS: &str = "params.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RngState {
    /// "derived": draws come from generators seeded by (seed, purpose, counter).
    pub kind: String,
    pub seed: u64,
    /// Micro-batches already drawn (the dropout stream's counter).
    pub dropout_draws: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub step: usize,
    pub epoch: usize,
    /// Batches of `epoch` already consumed.
    pub cursor: usize,
    /// The batches (example indices) of `epoch`, in order.
    pub epoch_order: Vec<Vec<usize>>,
    pub rng: RngState,
    pub best_eval_loss: Option<f64>,
    pub evals_without_improvement: usize,
    pub tokens_seen: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct StateFile {
    format: u32,
    state: TrainState,
    optimizer_t: usize,
    /// Everything that must match for a resume to continue the same run.
    fingerprint: BTreeMap<String, Value>,
    config_hash: String,
    sha256: BTreeMap<String, String>,
}

/// SHA-256 of the canonical JSON of the fingerprint.
pub fn config_hash(fingerprint: &BTreeMap<String, Value>) -> String {
    hex(&Sha256::digest(serde_json::to_vec(fingerprint).expect("JSON values serialize")))
}

pub fn step_dir(root: &Path, step: usize) -> PathBuf {
    root.join(format!("step-{step:06}"))
}

/// Writes a checkpoint under `root` and keeps only the newest `keep`.
pub fn save(
    root: &Path,
    state: &TrainState,
    fingerprint: &BTreeMap<String, Value>,
    params: &[(String, Var)],
    opt: &AdamW,
    keep: usize,
) -> Result<PathBuf> {
    let final_dir = step_dir(root, state.step);
    let tmp = root.join(format!(".tmp-step-{:06}-{}", state.step, std::process::id()));
    let werr = |p: &Path, e: &dyn std::fmt::Display| TrainError::write(p, e.to_string());
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| werr(&tmp, &e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| werr(&tmp, &e))?;

    let mut sha256 = BTreeMap::new();
    let named: HashMap<String, Tensor> = params.iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect();
    let mut moments = HashMap::new();
    for (i, (name, _)) in params.iter().enumerate() {
        moments.insert(format!("{name}::m"), opt.m[i].clone());
        moments.insert(format!("{name}::v"), opt.v[i].clone());
    }
    for (file, tensors) in [(PARAMS, &named), (OPTIMIZER, &moments)] {
        let p = tmp.join(file);
        candle_core::safetensors::save(tensors, &p).map_err(|e| werr(&p, &e))?;
        let bytes = std::fs::read(&p).map_err(|e| werr(&p, &e))?;
        sha256.insert(file.to_string(), hex(&Sha256::digest(&bytes)));
        fsync(&p)?;
    }
    let file = StateFile {
        format: FORMAT,
        state: state.clone(),
        optimizer_t: opt.t,
        config_hash: config_hash(fingerprint),
        fingerprint: fingerprint.clone(),
        sha256,
    };
    let p = tmp.join(STATE);
    std::fs::write(&p, serde_json::to_vec_pretty(&file).expect("state serializes")).map_err(|e| werr(&p, &e))?;
    fsync(&p)?;
    fsync(&tmp)?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(|e| werr(&final_dir, &e))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(|e| werr(&final_dir, &e))?;
    fsync(root)?;
    for old in list(root)?.into_iter().rev().skip(keep.max(1)) {
        let _ = std::fs::remove_dir_all(old.1);
    }
    Ok(final_dir)
}

fn fsync(path: &Path) -> Result<()> {
    std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(|e| TrainError::write(path, e))
}

/// Removes temporary folders a killed run left behind (never complete checkpoints).
pub fn remove_partial(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for e in entries.filter_map(std::result::Result::ok) {
        if e.file_name().to_string_lossy().starts_with(".tmp-step-") {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Complete checkpoints under `root`, oldest first (temporary folders are not checkpoints).
pub fn list(root: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let Ok(entries) = std::fs::read_dir(root) else { return Ok(Vec::new()) };
    let mut out: Vec<(usize, PathBuf)> = entries
        .filter_map(std::result::Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("step-")?.parse().ok()?;
            Some((step, e.path()))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Restores parameters and optimizer from `dir` after checking integrity and that it belongs to
/// the run described by `fingerprint`.
pub fn load(dir: &Path, fingerprint: &BTreeMap<String, Value>, params: &[(String, Var)], opt: &mut AdamW) -> Result<TrainState> {
    let corrupt = |reason: String| TrainError::CheckpointCorrupt { path: dir.to_path_buf(), reason };
    let text = std::fs::read(dir.join(STATE)).map_err(|e| corrupt(format!("{STATE}: {e}")))?;
    let file: StateFile = serde_json::from_slice(&text).map_err(|e| corrupt(format!("{STATE}: {e}")))?;
    if file.format != FORMAT {
        return Err(corrupt(format!("format {} (this version reads {FORMAT})", file.format)));
    }
    let diffs: Vec<String> = fingerprint
        .iter()
        .chain(file.fingerprint.iter().filter(|(k, _)| !fingerprint.contains_key(*k)))
        .filter_map(|(k, _)| {
            let (then, now) = (file.fingerprint.get(k), fingerprint.get(k));
            (then != now).then(|| format!("{k}: checkpoint {}, now {}", show(then), show(now)))
        })
        .collect();
    if !diffs.is_empty() {
        return Err(TrainError::CheckpointMismatch { path: dir.to_path_buf(), reason: diffs.join("; ") });
    }
    let mut tensors = HashMap::new();
    for file_name in [PARAMS, OPTIMIZER] {
        let p = dir.join(file_name);
        let bytes = std::fs::read(&p).map_err(|e| corrupt(format!("{file_name}: {e}")))?;
        if file.sha256.get(file_name) != Some(&hex(&Sha256::digest(&bytes))) {
            return Err(corrupt(format!("{file_name}: SHA-256 differs from the one recorded in {STATE}")));
        }
        let loaded = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| corrupt(format!("{file_name}: {e}")))?;
        tensors.insert(file_name, loaded);
    }
    set_vars(params, &tensors[PARAMS]).map_err(|e| corrupt(format!("{PARAMS}: {e}")))?;
    let moments = &tensors[OPTIMIZER];
    let get = |key: String| moments.get(&key).cloned().ok_or_else(|| corrupt(format!("{OPTIMIZER}: `{key}` is missing")));
    let m = params.iter().map(|(n, _)| get(format!("{n}::m"))).collect::<Result<Vec<_>>>()?;
    let v = params.iter().map(|(n, _)| get(format!("{n}::v"))).collect::<Result<Vec<_>>>()?;
    opt.restore(file.optimizer_t, m, v).map_err(corrupt)?;
    Ok(file.state)
}

/// Why a set of named tensors cannot be copied into the trainable parameters (a checkpoint's
/// or a PEFT adapter's): every name must be present with the parameter's shape, and no other.
#[derive(Debug, thiserror::Error)]
pub enum ParamsMismatch {
    #[error("tensor `{name}` is missing")]
    Missing { name: String },
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape { name: String, found: Vec<usize>, expected: Vec<usize> },
    #[error("unexpected tensor `{name}`")]
    Unexpected { name: String },
    #[error("tensor `{name}`: {source}")]
    Tensor { name: String, source: candle_core::Error },
}

/// Copies `tensors` into `params` (as f32) after checking every name and shape.
pub fn set_vars<S: std::hash::BuildHasher>(
    params: &[(String, Var)],
    tensors: &HashMap<String, Tensor, S>,
) -> std::result::Result<(), ParamsMismatch> {
    for (name, var) in params {
        let t = tensors.get(name).ok_or_else(|| ParamsMismatch::Missing { name: name.clone() })?;
        if t.dims() != var.dims() {
            return Err(ParamsMismatch::Shape { name: name.clone(), found: t.dims().to_vec(), expected: var.dims().to_vec() });
        }
        let tensor_err = |source| ParamsMismatch::Tensor { name: name.clone(), source };
        var.set(&t.to_dtype(candle_core::DType::F32).map_err(tensor_err)?).map_err(tensor_err)?;
    }
    if tensors.len() != params.len() {
        let known: std::collections::HashSet<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
        if let Some(extra) = tensors.keys().find(|k| !known.contains(k.as_str())) {
            return Err(ParamsMismatch::Unexpected { name: extra.clone() });
        }
    }
    Ok(())
}

fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "(absent)".into(), Value::to_string)
}
