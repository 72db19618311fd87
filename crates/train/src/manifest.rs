//! The run folder's manifest (`tinyforge.json`: base + SHA-256, data + SHA-256, hyperparameters,
//! metrics, versions) and the digests it records.
use std::{
    fmt::Write as _,
    io::Read,
    path::{Path, PathBuf},
};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tinyforge_model::ModelFormat;

use crate::{
    data::{DataStats, hex},
    error::{Result, TrainError},
};

pub const MANIFEST_FILE: &str = "tinyforge.json";

/// SHA-256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let err = |e: std::io::Error| TrainError::DataRead { path: path.to_path_buf(), reason: e.to_string() };
    let mut f = std::fs::File::open(path).map_err(err)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// The base model's digest: the GGUF file's own SHA-256, or for an HF folder the SHA-256 of the
/// sorted `name sha256` lines of its config, weights and tokenizer files.
pub fn base_sha256(path: &Path, format: ModelFormat) -> Result<String> {
    if format == ModelFormat::Gguf {
        return sha256_file(path);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| TrainError::DataRead { path: path.to_path_buf(), reason: e.to_string() })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.ends_with(".safetensors")
                || matches!(name, "config.json" | "tokenizer.json" | "tokenizer_config.json" | "model.safetensors.index.json")
        })
        .collect();
    files.sort();
    let mut listing = String::new();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let _ = writeln!(listing, "{name} {}", sha256_file(&f)?);
    }
    Ok(hex(&Sha256::digest(listing.as_bytes())))
}

pub struct ManifestInput<'a> {
    pub base: &'a Path,
    pub base_sha256: &'a str,
    pub base_format: ModelFormat,
    pub data: &'a Path,
    pub data_sha256: &'a str,
    pub data_stats: &'a DataStats,
    pub eval_data: Option<(&'a Path, &'a str)>,
    pub hyperparameters: Value,
    pub metrics: Value,
    pub outputs: Value,
}

pub fn write(run_dir: &Path, m: &ManifestInput) -> Result<PathBuf> {
    let manifest = json!({
        "kind": "tinyforge.run",
        "formatVersion": 1,
        "createdAt": now_rfc3339(),
        "base": {
            "path": m.base.display().to_string(),
            "format": match m.base_format { ModelFormat::Gguf => "gguf", ModelFormat::HfFolder => "hf" },
            "sha256": m.base_sha256,
        },
        "data": {
            "path": m.data.display().to_string(),
            "sha256": m.data_sha256,
            "stats": m.data_stats,
            "eval": m.eval_data.map(|(p, h)| json!({ "path": p.display().to_string(), "sha256": h })),
        },
        "hyperparameters": m.hyperparameters,
        "metrics": m.metrics,
        "outputs": m.outputs,
        "versions": {
            "tinyforge": env!("CARGO_PKG_VERSION"),
            "candle": "0.11",
            "adapterFormat": "peft-lora",
        },
    });
    let path = run_dir.join(MANIFEST_FILE);
    let text = serde_json::to_string_pretty(&manifest).expect("manifest serializes") + "\n";
    let tmp = run_dir.join(format!(".{MANIFEST_FILE}.tmp"));
    std::fs::write(&tmp, text).map_err(|e| TrainError::write(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| TrainError::write(&path, e))?;
    Ok(path)
}

/// UTC time as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, no date crate needed for one stamp).
fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}
