//! Binding of `tinyforge_model`: `createTinyModel` (random Llama in the HF folder format, for
//! tests), `modelInfo` (config summary of an HF folder or GGUF file) and the debug
//! `modelLogits` (last-position logits of the candle model, used by parity tests).
use std::path::{Path, PathBuf};

use napi::bindgen_prelude::{AsyncTask, Float32Array, Uint32Array};
use napi::{Env, Task};
use napi_derive::napi;
use tinyforge_model as md;

use crate::error::{core_error, guard, js_error};

/// Shape of a tiny random model. Every field is optional.
#[napi(object, object_to_js = false, js_name = "TinyModelOptions")]
pub struct JsTinyModelOptions {
    /// @default 2
    pub layers: Option<u32>,
    /// @default 64
    pub hidden: Option<u32>,
    /// @default 4
    pub heads: Option<u32>,
    /// @default 2
    pub kv_heads: Option<u32>,
    /// @default 2 * hidden
    pub intermediate: Option<u32>,
    /// At least 259 (256 bytes + 3 special tokens). @default 512
    pub vocab_size: Option<u32>,
    /// Same seed and options give the same files, byte for byte. @default 0
    pub seed: Option<u32>,
    /// @default true
    pub tie_embeddings: Option<bool>,
    /// Text the BPE tokenizer is trained on. @default a built-in English/code/chat sample
    pub training_text: Option<String>,
}

impl From<JsTinyModelOptions> for md::TinyOptions {
    fn from(o: JsTinyModelOptions) -> Self {
        let d = md::TinyOptions::default();
        let hidden = o.hidden.map_or(d.hidden, |v| v as usize);
        Self {
            layers: o.layers.map_or(d.layers, |v| v as usize),
            hidden,
            heads: o.heads.map_or(d.heads, |v| v as usize),
            kv_heads: o.kv_heads.map_or(d.kv_heads, |v| v as usize),
            intermediate: o.intermediate.map_or(2 * hidden, |v| v as usize),
            vocab_size: o.vocab_size.map_or(d.vocab_size, |v| v as usize),
            seed: o.seed.map_or(d.seed, u64::from),
            tie_embeddings: o.tie_embeddings.unwrap_or(d.tie_embeddings),
            training_text: o.training_text,
        }
    }
}

#[napi(object, object_from_js = false, js_name = "TinyModel")]
pub struct JsTinyModel {
    /// The folder written.
    pub path: String,
    pub parameters: i64,
}

pub struct CreateTinyTask {
    out: PathBuf,
    options: md::TinyOptions,
}

impl Task for CreateTinyTask {
    type Output = md::TinyModel;
    type JsValue = JsTinyModel;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard("creating a tiny model", || md::create_tiny_model(&self.out, &self.options).map_err(core_error))
    }

    fn resolve(&mut self, _env: Env, made: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(JsTinyModel { path: self.out.to_string_lossy().into_owned(), parameters: made.parameters as i64 })
    }
}

/// Writes a tiny random Llama model (config.json, model.safetensors, tokenizer.json,
/// tokenizer_config.json with a ChatML template, generation_config.json) into `outDir`.
#[napi(catch_unwind, ts_return_type = "Promise<TinyModel>")]
pub fn create_tiny_model(out_dir: String, options: Option<JsTinyModelOptions>) -> AsyncTask<CreateTinyTask> {
    let options = options.map(Into::into).unwrap_or_default();
    AsyncTask::new(CreateTinyTask { out: PathBuf::from(out_dir), options })
}

/// The config of a model, with HF `config.json` meanings.
#[napi(object, object_from_js = false, js_name = "ModelInfo")]
pub struct JsModelInfo {
    /// "hf" (a folder with config.json) or "gguf".
    pub format: String,
    pub architecture: String,
    pub hidden_size: u32,
    pub intermediate_size: u32,
    pub num_hidden_layers: u32,
    pub num_attention_heads: u32,
    pub num_key_value_heads: u32,
    pub head_dim: u32,
    pub vocab_size: u32,
    pub max_position_embeddings: u32,
    pub rope_theta: f64,
    /// e.g. "linear x2"; absent without scaling.
    pub rope_scaling: Option<String>,
    pub rms_norm_eps: f64,
    pub tie_word_embeddings: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
    pub torch_dtype: Option<String>,
    /// Parameter count implied by the shapes (tied embeddings counted once).
    pub parameters: i64,
}

/// Reads only the config (GGUF: the metadata header), never the weights.
#[napi(catch_unwind)]
pub fn model_info(path: String) -> napi::Result<JsModelInfo> {
    guard("reading a model config", || model_info_of(&PathBuf::from(&path)))
}

fn model_info_of(p: &Path) -> napi::Result<JsModelInfo> {
    let format = md::detect_format(p).map_err(core_error)?;
    let c = md::load_config(p).map_err(core_error)?;
    Ok(JsModelInfo {
        format: if format == md::ModelFormat::Gguf { "gguf" } else { "hf" }.into(),
        architecture: c.architectures.first().cloned().unwrap_or_else(|| "LlamaForCausalLM".into()),
        hidden_size: c.hidden_size as u32,
        intermediate_size: c.intermediate_size as u32,
        num_hidden_layers: c.num_hidden_layers as u32,
        num_attention_heads: c.num_attention_heads as u32,
        num_key_value_heads: c.num_kv_heads() as u32,
        head_dim: c.head_dim() as u32,
        vocab_size: c.vocab_size as u32,
        max_position_embeddings: c.max_position_embeddings as u32,
        rope_theta: c.rope_theta,
        rope_scaling: c.rope_scaling.as_ref().map(|s| format!("{} x{}", s.rope_type, s.factor)),
        rms_norm_eps: c.rms_norm_eps,
        tie_word_embeddings: c.tie_word_embeddings,
        bos_token_id: c.bos_token_id,
        eos_token_ids: c.eos_ids(),
        torch_dtype: c.torch_dtype.clone(),
        parameters: c.parameter_count() as i64,
    })
}

pub struct LogitsTask {
    path: PathBuf,
    ids: Vec<u32>,
}

impl Task for LogitsTask {
    type Output = Vec<f32>;
    type JsValue = Float32Array;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard("computing logits", || {
            // Checked here so the promise rejects (rather than the call throwing).
            if self.ids.is_empty() {
                return Err(js_error("INVALID_ARGUMENT", "ids is empty: need at least one token id"));
            }
            let model = md::Llama::load(&self.path).map_err(core_error)?;
            model.last_logits(&self.ids).map_err(core_error)
        })
    }

    fn resolve(&mut self, _env: Env, logits: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(Float32Array::new(logits))
    }
}

/// Debug/test helper: loads the model (HF folder or GGUF) and returns the eval-mode logits at the
/// last position of `ids` (length = vocab size). Loads the model on every call.
#[napi(catch_unwind, ts_return_type = "Promise<Float32Array>")]
pub fn model_logits(path: String, ids: Uint32Array) -> AsyncTask<LogitsTask> {
    // Copy now: the worker thread must not touch JS memory.
    AsyncTask::new(LogitsTask { path: PathBuf::from(path), ids: ids.to_vec() })
}
