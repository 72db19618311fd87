//! Binding of text generation (`tinyforge_model::generate`) and adapter merging
//! (`tinyforge_train::merge`): `generate(modelPath, prompt | messages, options)` loads and
//! answers once; `Generator.load(modelPath, { adapter })` keeps the model for repeated questions;
//! `mergeAdapter(base, adapter, out)` writes a merged HF folder. All work runs on libuv threads.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use napi::bindgen_prelude::{AsyncTask, Either};
use napi::{Env, Task};
use napi_derive::napi;
use tinyforge_model as md;
use tinyforge_tokenizer as tk;
use tinyforge_train as tr;

use crate::error::js_error;
use crate::tokenizer::JsChatMessage;

fn no_panic<T>(what: &str, f: impl FnOnce() -> napi::Result<T>) -> napi::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(js_error("PANIC", format!("internal error while {what}"))))
}

fn train_error(e: tr::TrainError) -> napi::Error {
    js_error(e.code(), e)
}

fn tok_error(e: tk::TokenizerError, fallback: &str) -> napi::Error {
    let code = match &e {
        tk::TokenizerError::Load { .. } => "TOKENIZER_LOAD",
        tk::TokenizerError::NoChatTemplate { .. } => "CHAT_TEMPLATE_MISSING",
        tk::TokenizerError::GgufInvalid { .. } => "GGUF_INVALID",
        _ => fallback,
    };
    js_error(code, e)
}

/// A model (with any adapter merged in), its tokenizer and the ids that end a turn.
pub struct Engine {
    model: md::Llama,
    tokenizer: tk::Tokenizer,
    eos: Vec<u32>,
}

impl Engine {
    fn load(path: &Path, adapter: Option<&Path>) -> napi::Result<Self> {
        let format = md::detect_format(path).map_err(|e| js_error(e.code(), e))?;
        let model = match adapter {
            Some(dir) => tr::merge::load_merged(path, dir).map_err(train_error)?,
            None => md::Llama::load(path).map_err(|e| js_error(e.code(), e))?,
        };
        let tokenizer = match format {
            md::ModelFormat::Gguf => tk::Tokenizer::from_gguf(path),
            md::ModelFormat::HfFolder => tk::Tokenizer::from_file(path),
        }
        .map_err(|e| tok_error(e, "TOKENIZER_LOAD"))?;
        let mut eos = model.config().eos_ids();
        eos.extend(tokenizer.special_tokens().eos);
        Ok(Self { model, tokenizer, eos })
    }

    fn run(&self, req: &Request) -> napi::Result<JsGeneration> {
        let fail = |e: &dyn std::fmt::Display| js_error("GENERATION_FAILED", e);
        let use_template =
            req.chat_template.unwrap_or(matches!(req.prompt, Prompt::Messages(_)) || self.tokenizer.chat_template().is_some());
        let ids = if use_template {
            let messages = match &req.prompt {
                Prompt::Messages(m) => m.clone(),
                Prompt::Text(t) => vec![tk::ChatMessage::new("user", t.clone())],
            };
            let opts = tk::ChatOptions { add_generation_prompt: true, tools: None };
            let text = self.tokenizer.apply_chat_template(&messages, &opts).map_err(|e| tok_error(e, "CHAT_TEMPLATE"))?;
            // The template already wrote every special token it wants.
            self.tokenizer.encode(&text, false)
        } else {
            let text = match &req.prompt {
                Prompt::Text(t) => t.clone(),
                Prompt::Messages(m) => m.iter().map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n"),
            };
            self.tokenizer.encode(&text, true)
        }
        .map_err(|e| fail(&e))?;
        let decode = |t: &[u32]| self.tokenizer.decode(t, true).unwrap_or_default();
        // Decoding the whole completion each step is cheap next to a forward pass.
        let stop_check = |t: &[u32]| {
            if req.stop.is_empty() {
                return false;
            }
            let text = decode(t);
            req.stop.iter().any(|s| text.contains(s.as_str()))
        };
        let g = md::generate(&self.model, &ids, &self.eos, &req.sampling, stop_check).map_err(|e| match e {
            md::ModelError::Input(m) => js_error("INVALID_ARGUMENT", m),
            other => fail(&other),
        })?;
        let mut text = self.tokenizer.decode(&g.tokens, true).map_err(|e| fail(&e))?;
        if let Some(cut) = req.stop.iter().filter_map(|s| text.find(s.as_str())).min() {
            text.truncate(cut);
        }
        Ok(JsGeneration {
            text,
            confidence: g.confidence().unwrap_or(0.0),
            prompt_tokens: ids.len() as u32,
            completion_tokens: g.tokens.len() as u32,
            finish_reason: match g.stop {
                md::StopReason::Eos => "eos",
                md::StopReason::MaxTokens => "length",
                md::StopReason::Stop => "stop",
            }
            .into(),
            token_probs: g.probs.iter().map(|&p| p as f64).collect(),
            tokens: g.tokens,
        })
    }
}

enum Prompt {
    Text(String),
    Messages(Vec<tk::ChatMessage>),
}

struct Request {
    prompt: Prompt,
    sampling: md::SamplingOptions,
    stop: Vec<String>,
    chat_template: Option<bool>,
}

#[napi(object, object_to_js = false, js_name = "GenerateOptions")]
pub struct JsGenerateOptions {
    /// PEFT adapter folder applied on top of the base (merged in at load). Ignored by
    /// `Generator.generate` (give it to `Generator.load`).
    pub adapter: Option<String>,
    /// At least 1. @default 128
    pub max_tokens: Option<u32>,
    /// 0 = greedy. @default 0
    pub temperature: Option<f64>,
    /// @default all tokens
    pub top_k: Option<u32>,
    /// In (0, 1]. @default 1
    pub top_p: Option<f64>,
    /// > 0; 1 = off. @default 1
    pub repetition_penalty: Option<f64>,
    /// Same seed, same options, same model → same tokens. @default 0
    pub seed: Option<u32>,
    /// Generation ends when the text contains one of these; the text is cut before it.
    pub stop: Option<Vec<String>>,
    /// Format the prompt with the tokenizer's chat template (a string prompt becomes one user
    /// message). @default true when messages are given or the tokenizer has a template
    pub chat_template: Option<bool>,
}

#[napi(object, object_from_js = false, js_name = "Generation")]
pub struct JsGeneration {
    /// The completion (special tokens left out, cut before a stop string).
    pub text: String,
    /// Generated token ids (a closing EOS excluded).
    pub tokens: Vec<u32>,
    /// Model probability of each generated token.
    pub token_probs: Vec<f64>,
    /// Mean probability of the choices made (tokens and the closing EOS), in (0, 1].
    pub confidence: f64,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// "eos", "length" (maxTokens or the context window) or "stop" (a stop string).
    pub finish_reason: String,
}

fn request(prompt: Either<String, Vec<JsChatMessage>>, o: Option<JsGenerateOptions>) -> napi::Result<(Request, Option<String>)> {
    let o = o.unwrap_or(JsGenerateOptions {
        adapter: None,
        max_tokens: None,
        temperature: None,
        top_k: None,
        top_p: None,
        repetition_penalty: None,
        seed: None,
        stop: None,
        chat_template: None,
    });
    let prompt = match prompt {
        Either::A(t) => Prompt::Text(t),
        Either::B(m) if m.is_empty() => return Err(js_error("INVALID_ARGUMENT", "messages is empty")),
        Either::B(m) => Prompt::Messages(m.into_iter().map(|m| tk::ChatMessage::new(m.role, m.content)).collect()),
    };
    if o.max_tokens == Some(0) {
        return Err(js_error("INVALID_ARGUMENT", "maxTokens must be at least 1"));
    }
    let sampling = md::SamplingOptions {
        max_tokens: o.max_tokens.map_or(128, |n| n as usize),
        temperature: o.temperature.unwrap_or(0.0),
        top_k: o.top_k.map(|k| k as usize),
        top_p: o.top_p,
        repetition_penalty: o.repetition_penalty.unwrap_or(1.0),
        seed: o.seed.map_or(0, u64::from),
    };
    sampling.validate().map_err(|m| js_error("INVALID_ARGUMENT", m))?;
    let stop: Vec<String> = o.stop.unwrap_or_default().into_iter().filter(|s| !s.is_empty()).collect();
    Ok((Request { prompt, sampling, stop, chat_template: o.chat_template }, o.adapter))
}

pub struct GenerateTask {
    model: PathBuf,
    adapter: Option<PathBuf>,
    engine: Option<Arc<Engine>>,
    request: napi::Result<Request>,
}

impl Task for GenerateTask {
    type Output = JsGeneration;
    type JsValue = JsGeneration;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        no_panic("generating", || {
            // Option errors reject the promise rather than throw.
            let req = self.request.as_ref().map_err(|e| napi::Error::new(e.status, e.reason.clone()))?;
            match &self.engine {
                Some(engine) => engine.run(req),
                None => Engine::load(&self.model, self.adapter.as_deref())?.run(req),
            }
        })
    }

    fn resolve(&mut self, _env: Env, out: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(out)
    }
}

/// Loads the model (HF folder or GGUF, plus `options.adapter`) and generates a completion of
/// `prompt` (text or chat messages). Rejects with MODEL_NOT_FOUND, ADAPTER_INVALID,
/// CHAT_TEMPLATE_MISSING (messages for a tokenizer without a template),
/// INVALID_ARGUMENT or GENERATION_FAILED. Use `Generator` to ask several questions.
#[napi(catch_unwind, ts_return_type = "Promise<Generation>")]
pub fn generate(
    model_path: String,
    prompt: Either<String, Vec<JsChatMessage>>,
    options: Option<JsGenerateOptions>,
) -> AsyncTask<GenerateTask> {
    let (request, adapter) = match request(prompt, options) {
        Ok((r, a)) => (Ok(r), a),
        Err(e) => (Err(e), None),
    };
    AsyncTask::new(GenerateTask { model: PathBuf::from(model_path), adapter: adapter.map(PathBuf::from), engine: None, request })
}

#[napi(object, object_to_js = false, js_name = "GeneratorLoadOptions")]
pub struct JsGeneratorLoadOptions {
    /// PEFT adapter folder merged into the base at load.
    pub adapter: Option<String>,
}

pub struct LoadGeneratorTask {
    model: PathBuf,
    adapter: Option<PathBuf>,
}

impl Task for LoadGeneratorTask {
    type Output = Engine;
    type JsValue = JsGenerator;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        no_panic("loading a model for generation", || Engine::load(&self.model, self.adapter.as_deref()))
    }

    fn resolve(&mut self, _env: Env, engine: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(JsGenerator { engine: Arc::new(engine) })
    }
}

/// A loaded model (plus adapter) for repeated generation; concurrent calls run in parallel.
#[napi(js_name = "Generator")]
pub struct JsGenerator {
    engine: Arc<Engine>,
}

#[napi]
impl JsGenerator {
    /// Loads the model once. Rejects with MODEL_NOT_FOUND, ADAPTER_INVALID or TOKENIZER_LOAD.
    #[napi(catch_unwind, ts_return_type = "Promise<Generator>")]
    pub fn load(model_path: String, options: Option<JsGeneratorLoadOptions>) -> AsyncTask<LoadGeneratorTask> {
        let adapter = options.and_then(|o| o.adapter).map(PathBuf::from);
        AsyncTask::new(LoadGeneratorTask { model: PathBuf::from(model_path), adapter })
    }

    /// Like the `generate` function, without reloading (`options.adapter` must not be set).
    #[napi(catch_unwind, ts_return_type = "Promise<Generation>")]
    pub fn generate(&self, prompt: Either<String, Vec<JsChatMessage>>, options: Option<JsGenerateOptions>) -> AsyncTask<GenerateTask> {
        let request = match request(prompt, options) {
            Ok((_, Some(_))) => Err(js_error("INVALID_ARGUMENT", "adapter: give it to Generator.load")),
            Ok((r, None)) => Ok(r),
            Err(e) => Err(e),
        };
        AsyncTask::new(GenerateTask { model: PathBuf::new(), adapter: None, engine: Some(Arc::clone(&self.engine)), request })
    }
}

#[napi(object, object_from_js = false, js_name = "MergedModel")]
pub struct JsMergedModel {
    /// The merged HF model folder.
    pub path: String,
}

pub struct MergeTask {
    base: PathBuf,
    adapter: PathBuf,
    out: PathBuf,
}

impl Task for MergeTask {
    type Output = PathBuf;
    type JsValue = JsMergedModel;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        no_panic("merging an adapter", || tr::merge::merge_adapter(&self.base, &self.adapter, &self.out).map_err(train_error))
    }

    fn resolve(&mut self, _env: Env, path: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(JsMergedModel { path: path.display().to_string() })
    }
}

/// Merges the PEFT adapter in `adapter` into `base` (HF folder or GGUF) and writes an HF folder
/// (f32 model.safetensors, config.json, tokenizer files) at `out`. Rejects with MODEL_NOT_FOUND,
/// ADAPTER_INVALID or WRITE_FAILED.
#[napi(catch_unwind, ts_return_type = "Promise<MergedModel>")]
pub fn merge_adapter(base: String, adapter: String, out: String) -> AsyncTask<MergeTask> {
    AsyncTask::new(MergeTask { base: base.into(), adapter: adapter.into(), out: out.into() })
}
