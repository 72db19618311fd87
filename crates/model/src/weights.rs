//! Loading a Llama-family checkpoint into one `HashMap<String, Tensor>` of f32 tensors keyed by
//! Hugging Face names (`model.layers.0.self_attn.q_proj.weight`, ...), whatever the source:
//! an HF folder (`model.safetensors`, or shards listed in `model.safetensors.index.json`,
//! bf16/f16/f32) or a GGUF file (every tensor dequantized, names mapped, Q/K rows un-permuted).
//!
//! Why un-permute: llama.cpp's converter reorders the rows of `q_proj`/`k_proj` inside each head
//! so that its interleaved RoPE (pairs `2i, 2i+1`) is equivalent to HF's rotate-half RoPE (pairs
//! `i, i + d/2`). We use HF's layout everywhere so PEFT adapters and the ONNX export line up.
use std::{
    collections::{BTreeSet, HashMap},
    path::Path,
};

use candle_core::{DType, Device, Tensor, quantized::gguf_file};

use crate::{
    config::LlamaConfig,
    error::{ModelError, Result},
};

pub type Weights = HashMap<String, Tensor>;

/// A loaded checkpoint: its config and its f32 weights in HF naming.
pub struct Checkpoint {
    pub config: LlamaConfig,
    pub weights: Weights,
}

/// What a path holds, decided without reading weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    HfFolder,
    Gguf,
}

pub fn detect_format(path: &Path) -> Result<ModelFormat> {
    let not_found = |reason: &str| ModelError::NotFound { path: path.to_path_buf(), reason: reason.into() };
    if path.is_dir() {
        if path.join("config.json").is_file() {
            return Ok(ModelFormat::HfFolder);
        }
        return Err(not_found("folder has no config.json"));
    }
    if path.is_file() {
        let mut magic = [0u8; 4];
        use std::io::Read;
        let ok = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok();
        if ok && &magic == b"GGUF" {
            return Ok(ModelFormat::Gguf);
        }
        return Err(ModelError::GgufInvalid {
            path: path.to_path_buf(),
            reason: "not a GGUF file (bad magic) and not a model folder".into(),
        });
    }
    Err(not_found("path does not exist"))
}

/// Config only (cheap: no tensor data is read).
pub fn load_config(path: &Path) -> Result<LlamaConfig> {
    match detect_format(path)? {
        ModelFormat::HfFolder => LlamaConfig::from_dir(path),
        ModelFormat::Gguf => {
            let (content, _) = read_gguf_header(path)?;
            LlamaConfig::from_gguf(&content, path)
        }
    }
}

/// Config and f32 weights from an HF folder or a GGUF file.
pub fn load_checkpoint(path: &Path) -> Result<Checkpoint> {
    match detect_format(path)? {
        ModelFormat::HfFolder => {
            let config = LlamaConfig::from_dir(path)?;
            let weights = load_safetensors_dir(path)?;
            Ok(Checkpoint { config, weights })
        }
        ModelFormat::Gguf => load_gguf(path),
    }
}

/// `model.safetensors`, or every shard named in `model.safetensors.index.json`, as f32.
pub fn load_safetensors_dir(dir: &Path) -> Result<Weights> {
    let single = dir.join("model.safetensors");
    let index = dir.join("model.safetensors.index.json");
    let files: Vec<std::path::PathBuf> = if single.is_file() {
        vec![single]
    } else if index.is_file() {
        let bad = |reason: String| ModelError::Weights { path: index.clone(), reason };
        let text = std::fs::read_to_string(&index).map_err(|e| bad(e.to_string()))?;
        let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let map = json["weight_map"].as_object().ok_or_else(|| bad("no `weight_map` object".into()))?;
        let shards: BTreeSet<&str> = map.values().filter_map(|v| v.as_str()).collect();
        shards.into_iter().map(|s| dir.join(s)).collect()
    } else {
        return Err(ModelError::WeightsMissing {
            name: "model.safetensors".into(),
            reason: format!("neither model.safetensors nor model.safetensors.index.json in {}", dir.display()),
        });
    };
    let mut weights = Weights::new();
    for file in files {
        let tensors = candle_core::safetensors::load(&file, &Device::Cpu)
            .map_err(|e| ModelError::Weights { path: file.clone(), reason: e.to_string() })?;
        for (name, t) in tensors {
            weights.insert(name, to_f32(t)?);
        }
    }
    Ok(weights)
}

fn to_f32(t: Tensor) -> Result<Tensor> {
    Ok(if t.dtype() == DType::F32 { t } else { t.to_dtype(DType::F32)? })
}

fn read_gguf_header(path: &Path) -> Result<(gguf_file::Content, std::fs::File)> {
    let mut file = std::fs::File::open(path).map_err(|e| ModelError::NotFound { path: path.to_path_buf(), reason: e.to_string() })?;
    let content =
        gguf_file::Content::read(&mut file).map_err(|e| ModelError::GgufInvalid { path: path.to_path_buf(), reason: e.to_string() })?;
    Ok((content, file))
}

/// Every GGUF tensor dequantized to f32, renamed to HF names, Q/K un-permuted.
pub fn load_gguf(path: &Path) -> Result<Checkpoint> {
    let (content, mut file) = read_gguf_header(path)?;
    let config = LlamaConfig::from_gguf(&content, path)?;
    let bad = |reason: String| ModelError::GgufInvalid { path: path.to_path_buf(), reason };
    let mut weights = Weights::new();
    for name in content.tensor_infos.keys() {
        // Llama 3 GGUFs carry precomputed RoPE factors; we recompute them from the config.
        if name == "rope_freqs.weight" {
            continue;
        }
        let hf = gguf_to_hf_name(name).ok_or_else(|| bad(format!("unexpected tensor `{name}`")))?;
        let q = content.tensor(&mut file, name, &Device::Cpu).map_err(|e| bad(format!("{name}: {e}")))?;
        let mut t = q.dequantize(&Device::Cpu).map_err(|e| bad(format!("{name}: {e}")))?;
        if hf.ends_with("self_attn.q_proj.weight") {
            t = unpermute_rope_rows(&t, config.num_attention_heads)?;
        } else if hf.ends_with("self_attn.k_proj.weight") {
            t = unpermute_rope_rows(&t, config.num_kv_heads())?;
        }
        weights.insert(hf, t);
    }
    Ok(Checkpoint { config, weights })
}

/// `blk.N.attn_q.weight` → `model.layers.N.self_attn.q_proj.weight`, etc.
pub fn gguf_to_hf_name(name: &str) -> Option<String> {
    match name {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    let rest = name.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let hf = match part {
        "attn_norm.weight" => "input_layernorm.weight",
        "ffn_norm.weight" => "post_attention_layernorm.weight",
        "attn_q.weight" => "self_attn.q_proj.weight",
        "attn_k.weight" => "self_attn.k_proj.weight",
        "attn_v.weight" => "self_attn.v_proj.weight",
        "attn_output.weight" => "self_attn.o_proj.weight",
        "ffn_gate.weight" => "mlp.gate_proj.weight",
        "ffn_up.weight" => "mlp.up_proj.weight",
        "ffn_down.weight" => "mlp.down_proj.weight",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}"))
}

/// What llama.cpp's `convert_hf_to_gguf.py` does to Q/K (`LlamaModel.permute`):
/// rows of each head go from `[half, pair]` order to `[pair, half]` order.
pub fn permute_rope_rows(w: &Tensor, n_head: usize) -> Result<Tensor> {
    let (out, inp) = w.dims2()?;
    let half = out / n_head / 2;
    Ok(w.reshape((n_head, 2, half, inp))?.transpose(1, 2)?.contiguous()?.reshape((out, inp))?)
}

/// The inverse of `permute_rope_rows`: back to the Hugging Face row order.
pub fn unpermute_rope_rows(w: &Tensor, n_head: usize) -> Result<Tensor> {
    let (out, inp) = w.dims2()?;
    if out % (2 * n_head) != 0 {
        return Err(ModelError::Input(format!("cannot un-permute {out} rows over {n_head} heads")));
    }
    let half = out / n_head / 2;
    Ok(w.reshape((n_head, half, 2, inp))?.transpose(1, 2)?.contiguous()?.reshape((out, inp))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        // 3 heads of dim 4 over 5 inputs; every row distinct so any reordering shows.
        let w = Tensor::arange(0f32, 60., &Device::Cpu).unwrap().reshape((12, 5)).unwrap();
        let p = permute_rope_rows(&w, 3).unwrap();
        // llama.cpp order inside head 0: rows [0, 2, 1, 3] (pairs of the rotate-half halves).
        let first_col: Vec<f32> = p.narrow(1, 0, 1).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(&first_col[..4], &[0., 10., 5., 15.]);
        let back = unpermute_rope_rows(&p, 3).unwrap();
        let diff = (back - &w).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(diff, 0.0);
    }

    #[test]
    fn maps_gguf_names() {
        assert_eq!(gguf_to_hf_name("blk.12.attn_k.weight").unwrap(), "model.layers.12.self_attn.k_proj.weight");
        assert_eq!(gguf_to_hf_name("blk.0.ffn_down.weight").unwrap(), "model.layers.0.mlp.down_proj.weight");
        assert!(gguf_to_hf_name("blk.x.attn_q.weight").is_none());
    }
}
