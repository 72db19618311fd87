//! Binding of the generation loop (`tinyforge_generate`) over the candle model
//! (`tinyforge_model::LlamaDecoder`): `generate(modelPath, prompt | messages, options)` loads and
//! answers once; `Generator.load(modelPath, { adapter })` keeps the model for repeated questions.
//! Only conversion lives here: prompts, sampling, stops and finish reasons are the core's. All
//! work runs on libuv threads.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use napi::bindgen_prelude::{AsyncTask, Either};
use napi::{Env, Task};
use napi_derive::napi;
use tinyforge_generate as gn;
use tinyforge_model as md;
use tinyforge_tokenizer as tk;
use tinyforge_train as tr;

use crate::error::{CoreError, core_error, guard, js_error};
use crate::sampling::{self, SamplingFields};
use crate::tokenizer::JsChatMessage;

impl CoreError for gn::GenerateError {
    fn code(&self) -> &'static str {
        gn::GenerateError::code(self)
    }
}

/// A model (with any adapter merged in), its tokenizer and the ids that end a turn.
pub struct Engine {
    model: md::Llama,
    tokenizer: tk::Tokenizer,
    eos: Vec<u32>,
}

impl Engine {
    fn load(path: &Path, adapter: Option<&Path>) -> napi::Result<Self> {
        let format = md::detect_format(path).map_err(core_error)?;
        let model = match adapter {
            Some(dir) => tr::merge::load_merged(path, dir).map_err(core_error)?,
            None => md::Llama::load(path).map_err(core_error)?,
        };
        let tokenizer = tr::run::load_tokenizer(path, format).map_err(core_error)?;
        let eos = gn::eos_ids(&model.config().eos_ids(), &tokenizer);
        Ok(Self { model, tokenizer, eos })
    }

    pub(crate) fn model(&self) -> &md::Llama {
        &self.model
    }

    pub(crate) fn tokenizer(&self) -> &tk::Tokenizer {
        &self.tokenizer
    }

    fn run(&self, req: &gn::Request) -> napi::Result<JsGeneration> {
        let mut decoder = md::LlamaDecoder::new(&self.model, 1);
        let g = gn::generate(&mut decoder, &self.tokenizer, &self.eos, req).map_err(core_error)?;
        Ok(JsGeneration {
            confidence: g.confidence().unwrap_or(0.0),
            prompt_tokens: u32::try_from(g.prompt_tokens).unwrap_or(u32::MAX),
            completion_tokens: u32::try_from(g.tokens.len()).unwrap_or(u32::MAX),
            finish_reason: g.finish_reason.as_str().into(),
            token_probs: g.logprobs.iter().map(|&l| f64::from(l).exp()).collect(),
            token_logprobs: g.logprobs.iter().map(|&l| f64::from(l)).collect(),
            text: g.text,
            tokens: g.tokens,
        })
    }
}

#[napi(object, object_to_js = false, js_name = "GenerateOptions")]
#[derive(Default)]
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
    /// In [0, 1]: drop tokens less likely than minP × the most likely one. @default 0
    pub min_p: Option<f64>,
    /// > 0; 1 = off. @default 1
    pub repetition_penalty: Option<f64>,
    /// In [-2, 2], OpenAI's: minus count × this on each generated token's logit. @default 0
    pub frequency_penalty: Option<f64>,
    /// In [-2, 2], OpenAI's: minus this on every generated token's logit. @default 0
    pub presence_penalty: Option<f64>,
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
    /// Model probability of each generated token (softmax of the raw logits).
    pub token_probs: Vec<f64>,
    /// Natural log of `tokenProbs`.
    pub token_logprobs: Vec<f64>,
    /// exp(mean log-probability) of the choices made (tokens and the closing EOS), in (0, 1].
    pub confidence: f64,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// "eos", "length" (maxTokens or the context window) or "stop" (a stop string).
    pub finish_reason: String,
}

fn request(prompt: Either<String, Vec<JsChatMessage>>, o: Option<JsGenerateOptions>) -> napi::Result<(gn::Request, Option<String>)> {
    let Some(o) = o else {
        return request(prompt, Some(JsGenerateOptions::default()));
    };
    let prompt = sampling::prompt(prompt);
    if let gn::Prompt::Messages(m) = &prompt
        && m.is_empty()
    {
        return Err(js_error("INVALID_ARGUMENT", "messages is empty"));
    }
    let fields = SamplingFields {
        max_tokens: o.max_tokens,
        temperature: o.temperature,
        top_k: o.top_k,
        top_p: o.top_p,
        min_p: o.min_p,
        repetition_penalty: o.repetition_penalty,
        frequency_penalty: o.frequency_penalty,
        presence_penalty: o.presence_penalty,
        seed: o.seed,
        stop: o.stop,
        top_logprobs: None,
    };
    let params = sampling::generate_params(fields, &gn::SamplingParams::default(), gn::GenerateParams::default().max_tokens);
    params.validate().map_err(core_error)?;
    Ok((gn::Request { prompt, chat_template: o.chat_template, params }, o.adapter))
}

pub struct GenerateTask {
    model: PathBuf,
    adapter: Option<PathBuf>,
    engine: Option<Arc<Engine>>,
    request: napi::Result<gn::Request>,
}

impl Task for GenerateTask {
    type Output = JsGeneration;
    type JsValue = JsGeneration;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard("generating", || {
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
/// INVALID_ARGUMENT or MODEL_COMPUTE. Use `Generator` to ask several questions.
#[napi(catch_unwind, ts_return_type = "Promise<Generation>")]
pub fn generate(
    model_path: String,
    #[napi(ts_arg_type = "string | Array<ChatMessage>")] prompt: Either<String, Vec<JsChatMessage>>,
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
        guard("loading a model for generation", || Engine::load(&self.model, self.adapter.as_deref()))
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

impl JsGenerator {
    pub(crate) fn engine(&self) -> Arc<Engine> {
        Arc::clone(&self.engine)
    }
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
    pub fn generate(
        &self,
        #[napi(ts_arg_type = "string | Array<ChatMessage>")] prompt: Either<String, Vec<JsChatMessage>>,
        options: Option<JsGenerateOptions>,
    ) -> AsyncTask<GenerateTask> {
        let request = match request(prompt, options) {
            Ok((_, Some(_))) => Err(js_error("INVALID_ARGUMENT", "adapter: give it to Generator.load")),
            Ok((r, None)) => Ok(r),
            Err(e) => Err(e),
        };
        AsyncTask::new(GenerateTask { model: PathBuf::new(), adapter: None, engine: Some(Arc::clone(&self.engine)), request })
    }
}
