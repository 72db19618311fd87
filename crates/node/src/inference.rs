//! Binding of the ONNX Runtime serving engine (`tinyforge_infer::InferenceSession`):
//! `InferenceSession.load(dir, { threads })` loads an export folder; `session.submit(prompt,
//! options, onEvent)` queues a generation on the session's scheduler thread and streams its
//! events (one `delta` per token, then `done` or `error`) through a non-blocking
//! ThreadsafeFunction, so no libuv worker is held while tokens are generated. The hand-written
//! index.cjs turns that into `generate()` (a promise), `stream()` (an async iterator), AbortSignal
//! cancellation and `infer(dir, ...)`.
use std::path::PathBuf;
use std::sync::Arc;

use napi::bindgen_prelude::{AsyncTask, Either};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status, Task};
use napi_derive::napi;
use tinyforge_generate as gn;
use tinyforge_infer as inf;
use tinyforge_tokenizer as tk;

use crate::error::{CoreError, core_error, guard};
use crate::sampling::{self, SamplingFields};
use crate::tokenizer::JsChatMessage;

impl CoreError for inf::EngineError {
    fn code(&self) -> &'static str {
        inf::EngineError::code(self)
    }
}

#[napi(object, object_to_js = false, js_name = "InferenceLoadOptions")]
pub struct JsInferenceLoadOptions {
    /// ORT intra-op threads. @default ORT's (one per core)
    pub threads: Option<u32>,
    /// Requests generating at once (more wait in a queue). @default 8
    pub slots: Option<u32>,
    /// Positions per request (prompt + completion). @default min(max_position_embeddings, 4096)
    pub context_len: Option<u32>,
    /// ORT's threads spinning while they wait for work: true = always (fastest for back-to-back
    /// steps, as `serve` runs; burns the cores between calls), false = never (for busy, shared
    /// hosts), unset = between the ops of a step only, stopping when it returns (1.6x the decode
    /// speed of false in a Python ORT loop on a quiet 2-core Xeon; nothing spins between calls).
    /// @default unset
    pub spinning: Option<bool>,
    /// Prompt tokens prefilled per scheduler turn, between decode steps. @default 128
    pub prefill_chunk: Option<u32>,
    /// Prompt tokens prefilled per scheduler turn between two decode steps, over one or more
    /// forwards (prompts arriving together start together): bounds the stall prefill puts on
    /// running streams. @default 256
    pub prefill_budget: Option<u32>,
}

#[napi(object, object_to_js = false, js_name = "InferOptions")]
#[derive(Default)]
pub struct JsInferOptions {
    /// At least 1. @default generation_config.json max_new_tokens, else 128
    pub max_tokens: Option<u32>,
    /// 0 = greedy. @default generation_config.json (greedy unless do_sample)
    pub temperature: Option<f64>,
    pub top_k: Option<u32>,
    pub top_p: Option<f64>,
    pub min_p: Option<f64>,
    pub repetition_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub presence_penalty: Option<f64>,
    pub seed: Option<u32>,
    pub stop: Option<Vec<String>>,
    /// Alternatives reported per generated token, at most 20. @default 0
    pub top_logprobs: Option<u32>,
    /// Format the prompt with the chat template. @default true for messages or when the
    /// tokenizer has a template
    pub chat_template: Option<bool>,
}

#[napi(object, object_from_js = false, js_name = "InferTopLogprob")]
pub struct JsTopLogprob {
    pub token: u32,
    pub text: String,
    pub logprob: f64,
}

#[napi(object, object_from_js = false, js_name = "InferUsage")]
pub struct JsUsage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

#[napi(object, object_from_js = false, js_name = "InferResult")]
pub struct JsInferResult {
    pub text: String,
    pub tokens: Vec<u32>,
    /// Natural log-probability of each generated token.
    pub logprobs: Vec<f64>,
    /// Per generated token, the most likely alternatives (empty lists unless asked).
    pub top_logprobs: Vec<Vec<JsTopLogprob>>,
    /// exp(mean log-probability) of the choices made, the closing EOS included; 0 when none.
    pub confidence: f64,
    /// "eos", "length", "stop" or "cancelled".
    pub finish_reason: String,
    pub usage: JsUsage,
}

/// One event of a submitted generation: `delta` (one token and the text it released; `token`
/// is absent for a closing step that only releases held-back text), then `done` with `result`,
/// or `error` with `code` and `message`.
#[napi(object, object_from_js = false, js_name = "InferEvent")]
pub struct JsInferEvent {
    #[napi(ts_type = "'delta' | 'done' | 'error'")]
    pub r#type: String,
    pub text: Option<String>,
    pub token: Option<u32>,
    pub token_text: Option<String>,
    pub logprob: Option<f64>,
    pub top_logprobs: Option<Vec<JsTopLogprob>>,
    pub result: Option<JsInferResult>,
    pub code: Option<String>,
    pub message: Option<String>,
}

#[napi(object, object_from_js = false, js_name = "InferenceSessionInfo")]
pub struct JsSessionInfo {
    pub dir: String,
    pub model_path: String,
    pub context_len: u32,
    pub slots: u32,
    /// True when the KV cache is updated in place (GroupQueryAttention graphs).
    pub kv_in_place: bool,
    pub chat_template: bool,
    pub eos_token_ids: Vec<u32>,
    pub max_tokens_default: Option<u32>,
}

type EventFn = ThreadsafeFunction<JsInferEvent, (), JsInferEvent, Status, false>;

fn tops(tok: &tk::Tokenizer, t: &[gn::TokenLogprob]) -> Vec<JsTopLogprob> {
    t.iter()
        .map(|a| JsTopLogprob { token: a.token, text: tok.decode(&[a.token], false).unwrap_or_default(), logprob: f64::from(a.logprob) })
        .collect()
}

fn result(tok: &tk::Tokenizer, g: &gn::Generation) -> JsInferResult {
    JsInferResult {
        text: g.text.clone(),
        tokens: g.tokens.clone(),
        logprobs: g.logprobs.iter().map(|&l| f64::from(l)).collect(),
        top_logprobs: g.top_logprobs.iter().map(|t| tops(tok, t)).collect(),
        confidence: g.confidence().unwrap_or(0.0),
        finish_reason: g.finish_reason.as_str().into(),
        usage: JsUsage { prompt_tokens: g.prompt_tokens as u32, completion_tokens: g.tokens.len() as u32 },
    }
}

fn empty_event(kind: &str) -> JsInferEvent {
    JsInferEvent {
        r#type: kind.into(),
        text: None,
        token: None,
        token_text: None,
        logprob: None,
        top_logprobs: None,
        result: None,
        code: None,
        message: None,
    }
}

fn request(s: &inf::InferenceSession, prompt: Either<String, Vec<JsChatMessage>>, o: Option<JsInferOptions>) -> inf::Request {
    let o = o.unwrap_or_default();
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
        top_logprobs: o.top_logprobs,
    };
    let default_max = s.info().max_new_tokens.unwrap_or(gn::GenerateParams::default().max_tokens);
    let params = sampling::generate_params(fields, &s.folder().sampling, default_max);
    inf::Request { prompt: sampling::prompt(prompt), chat_template: o.chat_template, params }
}

pub struct LoadTask {
    dir: PathBuf,
    options: inf::EngineOptions,
}

impl Task for LoadTask {
    type Output = inf::InferenceSession;
    type JsValue = JsInferenceSession;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard("loading an export folder", || inf::InferenceSession::load(&self.dir, &self.options).map_err(core_error))
    }

    fn resolve(&mut self, _env: Env, s: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(JsInferenceSession { inner: Arc::new(s) })
    }
}

/// Cancels a submitted generation at the next decode step (its slot is freed there).
#[napi(js_name = "InferHandle")]
pub struct JsInferHandle {
    cancel: inf::CancelHandle,
}

#[napi]
impl JsInferHandle {
    #[napi(catch_unwind)]
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

/// An export folder served by ONNX Runtime with continuous batching.
#[napi(js_name = "InferenceSession")]
pub struct JsInferenceSession {
    pub(crate) inner: Arc<inf::InferenceSession>,
}

#[napi]
impl JsInferenceSession {
    /// Loads `dir` (a `foremforge export` folder). Rejects with NOT_FOUND, ONNX_MODEL_LOAD,
    /// INVALID_ARGUMENT. ONNX Runtime must be loaded (index.cjs does it).
    #[napi(catch_unwind, ts_return_type = "Promise<InferenceSession>")]
    pub fn load(dir: String, options: Option<JsInferenceLoadOptions>) -> AsyncTask<LoadTask> {
        let o = options.unwrap_or(JsInferenceLoadOptions {
            threads: None,
            slots: None,
            context_len: None,
            spinning: None,
            prefill_chunk: None,
            prefill_budget: None,
        });
        let d = inf::EngineOptions::default();
        let options = inf::EngineOptions {
            threads: o.threads.map(|n| n as usize),
            spinning: match o.spinning {
                None => d.spinning,
                Some(true) => inf::Spinning::Always,
                Some(false) => inf::Spinning::Off,
            },
            slots: o.slots.map_or(d.slots, |n| n as usize),
            context_len: o.context_len.map(|n| n as usize),
            prefill_chunk: o.prefill_chunk.map_or(d.prefill_chunk, |n| n as usize),
            prefill_budget: o.prefill_budget.map_or(d.prefill_budget, |n| n as usize),
            all_logits: d.all_logits,
        };
        AsyncTask::new(LoadTask { dir: PathBuf::from(dir), options })
    }

    #[napi(getter)]
    pub fn info(&self) -> JsSessionInfo {
        let i = self.inner.info();
        JsSessionInfo {
            dir: i.dir.display().to_string(),
            model_path: i.model_path.display().to_string(),
            context_len: i.context_len as u32,
            slots: i.slots as u32,
            kv_in_place: i.kv_shared,
            chat_template: self.inner.tokenizer().chat_template().is_some(),
            eos_token_ids: i.eos.clone(),
            max_tokens_default: i.max_new_tokens.map(|n| n as u32),
        }
    }

    /// Prompt tokens exactly as a generation would feed them (template and BOS included).
    #[napi(catch_unwind)]
    pub fn count_tokens(
        &self,
        #[napi(ts_arg_type = "string | Array<ChatMessage>")] prompt: Either<String, Vec<JsChatMessage>>,
        chat_template: Option<bool>,
    ) -> napi::Result<u32> {
        guard("counting prompt tokens", || {
            let ids = gn::build_prompt(self.inner.tokenizer(), &sampling::prompt(prompt), chat_template).map_err(core_error)?;
            Ok(ids.len() as u32)
        })
    }

    /// Queues a generation; `onEvent` gets one `delta` per token, then `done` or `error`.
    /// Option and prompt errors throw here (INVALID_ARGUMENT, CHAT_TEMPLATE_MISSING, ...).
    #[napi(catch_unwind)]
    pub fn submit(
        &self,
        #[napi(ts_arg_type = "string | Array<ChatMessage>")] prompt: Either<String, Vec<JsChatMessage>>,
        options: Option<JsInferOptions>,
        #[napi(ts_arg_type = "(event: InferEvent) => void")] on_event: EventFn,
    ) -> napi::Result<JsInferHandle> {
        guard("submitting a generation", || {
            let req = request(&self.inner, prompt, options);
            let session = Arc::clone(&self.inner);
            let want_tops = req.params.top_logprobs > 0;
            let sink: inf::Sink = Box::new(move |e| {
                let tok = session.tokenizer();
                let event = match e {
                    inf::Event::Step { step, logprob, top } => {
                        let mut ev = empty_event("delta");
                        if let Some(t) = step.token {
                            ev.token = Some(t);
                            ev.token_text = Some(tok.decode(&[t], false).unwrap_or_default());
                            ev.logprob = logprob.map(f64::from);
                            if want_tops {
                                ev.top_logprobs = Some(tops(tok, &top));
                            }
                        }
                        ev.text = Some(step.text);
                        ev
                    }
                    inf::Event::Done(Ok(g)) => JsInferEvent { result: Some(result(tok, &g)), ..empty_event("done") },
                    inf::Event::Done(Err(err)) => {
                        JsInferEvent { code: Some(err.code().into()), message: Some(err.to_string()), ..empty_event("error") }
                    }
                };
                on_event.call(event, ThreadsafeFunctionCallMode::NonBlocking);
            });
            let cancel = self.inner.submit(&req, sink).map_err(core_error)?;
            Ok(JsInferHandle { cancel })
        })
    }

    /// Stops accepting requests, cancels running ones and waits for the scheduler to stop.
    #[napi(catch_unwind)]
    pub fn close(&self) -> napi::Result<()> {
        guard("closing an inference session", || {
            self.inner.close();
            Ok(())
        })
    }
}
