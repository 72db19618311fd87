//! `LlamaConfig`: the Hugging Face `config.json` of a Llama-family model, with HF's field names
//! and defaults, readable from a model folder or rebuilt from a GGUF file's `llama.*` metadata.
use std::{collections::HashMap, path::Path};

use candle_core::quantized::gguf_file;
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// `eos_token_id` is an int in most configs and a list in some (Llama 3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

/// HF `rope_scaling`. Only the kinds that change the frequencies of short contexts in a fixed way
/// are supported; the rest (dynamic NTK, YaRN, LongRoPE) are rejected by `validate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RopeScaling {
    /// HF writes `type` in older configs and `rope_type` in newer ones.
    #[serde(alias = "type")]
    pub rope_type: String,
    #[serde(default = "one")]
    pub factor: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_freq_factor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_freq_factor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_max_position_embeddings: Option<usize>,
}

fn one() -> f64 {
    1.0
}
fn default_eps() -> f64 {
    1e-6
}
fn default_theta() -> f64 {
    10_000.0
}
fn default_max_pos() -> usize {
    2048
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlamaConfig {
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default)]
    pub model_type: Option<String>,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Absent in old configs: then it equals `num_attention_heads` (no GQA).
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    #[serde(default = "default_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    pub rope_theta: f64,
    #[serde(default)]
    pub rope_scaling: Option<RopeScaling>,
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    pub vocab_size: usize,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub bos_token_id: Option<u32>,
    #[serde(default)]
    pub eos_token_id: Option<TokenIds>,
    #[serde(default)]
    pub torch_dtype: Option<String>,
    #[serde(default)]
    pub attention_bias: bool,
    #[serde(default)]
    pub mlp_bias: bool,
}

impl LlamaConfig {
    pub fn num_kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(self.hidden_size / self.num_attention_heads)
    }

    /// Reads and validates `<dir>/config.json`.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|e| ModelError::Config { path: path.clone(), reason: e.to_string() })?;
        let cfg: Self = serde_json::from_str(&text)
            .map_err(|e| ModelError::Config { path: path.clone(), reason: format!("line {} column {}: {e}", e.line(), e.column()) })?;
        cfg.validate().map_err(|reason| ModelError::Config { path, reason })?;
        Ok(cfg)
    }

    /// Rebuilds the HF config from GGUF metadata (`general.architecture` must be `llama`).
    pub fn from_gguf(content: &gguf_file::Content, path: &Path) -> Result<Self> {
        let md = &content.metadata;
        let bad = |reason: String| ModelError::GgufInvalid { path: path.to_path_buf(), reason };
        let arch = get(md, "general.architecture")?.to_string().map_err(|e| bad(e.to_string()))?;
        if arch != "llama" {
            return Err(bad(format!("architecture `{arch}` is not supported (only `llama`)")));
        }
        let u = |key: &str| -> Result<usize> {
            let v = get(md, key).map_err(|_| bad(format!("metadata `{key}` is missing")))?;
            v.to_u32().map(|x| x as usize).or_else(|_| v.to_u64().map(|x| x as usize)).map_err(|e| bad(format!("metadata `{key}`: {e}")))
        };
        // GGUF stores these as f32; going through the shortest decimal gives back HF's `1e-05`
        // instead of 9.99999974e-06.
        let f = |key: &str| md.get(key).and_then(|v| v.to_f32().ok()).and_then(|x| x.to_string().parse::<f64>().ok());
        let id = |key: &str| md.get(key).and_then(|v| v.to_u32().ok());
        let heads = u("llama.attention.head_count")?;
        let hidden = u("llama.embedding_length")?;
        let vocab_size = match u("llama.vocab_size") {
            Ok(n) => n,
            Err(_) => get(md, "tokenizer.ggml.tokens")?.to_vec().map_err(|e| bad(e.to_string()))?.len(),
        };
        let head_dim = u("llama.rope.dimension_count").ok().filter(|&d| d != hidden / heads);
        let rope_scaling = match md.get("llama.rope.scaling.type").and_then(|v| v.to_string().ok()) {
            Some(t) if t != "none" => Some(RopeScaling {
                rope_type: t.clone(),
                factor: f("llama.rope.scaling.factor").unwrap_or(1.0),
                low_freq_factor: None,
                high_freq_factor: None,
                original_max_position_embeddings: None,
            }),
            _ => None,
        };
        let cfg = Self {
            architectures: vec!["LlamaForCausalLM".into()],
            model_type: Some("llama".into()),
            hidden_size: hidden,
            intermediate_size: u("llama.feed_forward_length")?,
            num_hidden_layers: u("llama.block_count")?,
            num_attention_heads: heads,
            num_key_value_heads: Some(u("llama.attention.head_count_kv").unwrap_or(heads)),
            head_dim,
            rms_norm_eps: f("llama.attention.layer_norm_rms_epsilon").unwrap_or(1e-5),
            rope_theta: f("llama.rope.freq_base").unwrap_or(10_000.0),
            rope_scaling,
            max_position_embeddings: u("llama.context_length").unwrap_or(2048),
            vocab_size,
            // llama.cpp's converter drops `output.weight` when the model ties it to the embeddings.
            tie_word_embeddings: !content.tensor_infos.contains_key("output.weight"),
            bos_token_id: id("tokenizer.ggml.bos_token_id"),
            eos_token_id: id("tokenizer.ggml.eos_token_id").map(TokenIds::One),
            // Quantized blocks have no torch dtype; weights are dequantized to f32 on load.
            torch_dtype: None,
            attention_bias: false,
            mlp_bias: false,
        };
        cfg.validate().map_err(bad)?;
        Ok(cfg)
    }

    /// Checks what the decoder relies on; the message names the offending field.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if let Some(mt) = &self.model_type
            && !matches!(mt.as_str(), "llama" | "mistral" | "smollm" | "smollm2")
        {
            return Err(format!("model_type `{mt}` is not a Llama-family model"));
        }
        let nonzero = [
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("vocab_size", self.vocab_size),
        ];
        if let Some((name, _)) = nonzero.iter().find(|(_, v)| *v == 0) {
            return Err(format!("`{name}` must be > 0"));
        }
        let kv = self.num_kv_heads();
        if kv == 0 || !self.num_attention_heads.is_multiple_of(kv) {
            return Err(format!("num_attention_heads ({}) must be a multiple of num_key_value_heads ({kv})", self.num_attention_heads));
        }
        if self.head_dim.is_none() && !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err("hidden_size must be a multiple of num_attention_heads".into());
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(format!("head_dim ({}) must be even for RoPE", self.head_dim()));
        }
        if self.attention_bias || self.mlp_bias {
            return Err("attention_bias / mlp_bias are not supported".into());
        }
        if let Some(s) = &self.rope_scaling {
            match s.rope_type.as_str() {
                "default" => {}
                "linear" if s.factor > 0.0 => {}
                "llama3" if s.low_freq_factor.is_some() && s.high_freq_factor.is_some() && s.original_max_position_embeddings.is_some() => {
                }
                other => {
                    return Err(format!("rope_scaling type `{other}` is not supported (supported: linear, llama3 with its factors)"));
                }
            }
        }
        Ok(())
    }

    /// `eos_token_id` as a list (empty when unknown).
    pub fn eos_ids(&self) -> Vec<u32> {
        match &self.eos_token_id {
            Some(TokenIds::One(id)) => vec![*id],
            Some(TokenIds::Many(ids)) => ids.clone(),
            None => vec![],
        }
    }

    /// Trainable-or-not parameter count implied by the shapes (embeddings counted once if tied).
    pub fn parameter_count(&self) -> usize {
        let (h, i, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let hd = self.head_dim();
        let q = self.num_attention_heads * hd;
        let kv = self.num_kv_heads() * hd;
        let per_layer = h * q + 2 * h * kv + q * h + 3 * h * i + 2 * h;
        let head = if self.tie_word_embeddings { 0 } else { v * h };
        v * h + self.num_hidden_layers * per_layer + h + head
    }
}

fn get<'a>(md: &'a HashMap<String, gguf_file::Value>, key: &str) -> Result<&'a gguf_file::Value> {
    md.get(key).ok_or_else(|| ModelError::Input(format!("metadata `{key}` is missing")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLLM2: &str = r#"{"architectures":["LlamaForCausalLM"],"model_type":"llama",
      "hidden_size":576,"intermediate_size":1536,"num_hidden_layers":30,"num_attention_heads":9,
      "num_key_value_heads":3,"rms_norm_eps":1e-05,"rope_theta":100000,"rope_scaling":null,
      "max_position_embeddings":8192,"vocab_size":49152,"tie_word_embeddings":true,
      "bos_token_id":1,"eos_token_id":2,"torch_dtype":"bfloat16"}"#;

    #[test]
    fn parses_smollm2_config() {
        let c: LlamaConfig = serde_json::from_str(SMOLLM2).unwrap();
        c.validate().unwrap();
        assert_eq!((c.head_dim(), c.num_kv_heads()), (64, 3));
        assert_eq!(c.eos_ids(), vec![2]);
        // SmolLM2-135M: 134,515,008 parameters (embeddings tied).
        assert_eq!(c.parameter_count(), 134_515_008);
    }

    #[test]
    fn rope_scaling_kinds() {
        let mut c: LlamaConfig = serde_json::from_str(SMOLLM2).unwrap();
        c.rope_scaling = serde_json::from_str(r#"{"type":"linear","factor":2.0}"#).unwrap();
        c.validate().unwrap();
        c.rope_scaling = serde_json::from_str(r#"{"rope_type":"yarn","factor":4.0}"#).unwrap();
        assert!(c.validate().unwrap_err().contains("yarn"));
    }
}
