//! `InferenceSession.prototype.score(texts)`: teacher-forced negative log-likelihood of each
//! text through the session's exported model in ONNX Runtime (`tinyforge_infer::Scorer`: sliding
//! windows of 512 moved by 256, the Python reference harness's rule). Runs on a libuv worker with
//! its own ORT session of the same file, so scoring never holds up the generation scheduler.
use std::sync::Arc;

use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Task};
use napi_derive::napi;
use tinyforge_infer as inf;

use crate::error::{core_error, guard};
use crate::inference::JsInferenceSession;

/// One scored text: `nll` (natural log) summed over `tokens` predicted tokens;
/// perplexity = exp(nll / tokens).
#[napi(object, object_from_js = false, js_name = "InferenceScore")]
pub struct JsInferenceScore {
    pub tokens: u32,
    pub nll: f64,
}

pub struct ScoreTask {
    session: Arc<inf::InferenceSession>,
    texts: Vec<String>,
}

impl Task for ScoreTask {
    type Output = Vec<inf::Score>;
    type JsValue = Vec<JsInferenceScore>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard("scoring texts", || {
            let folder = self.session.folder();
            let mut scorer = inf::Scorer::load(&folder.model_path, folder.shape, None).map_err(core_error)?;
            scorer.score_texts(self.session.tokenizer(), &self.texts).map_err(core_error)
        })
    }

    fn resolve(&mut self, _env: Env, scores: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(scores.into_iter().map(|s| JsInferenceScore { tokens: s.tokens as u32, nll: s.nll }).collect())
    }
}

#[napi]
impl JsInferenceSession {
    /// Teacher-forced scores of `texts` (each tokenized without special tokens; its first token
    /// is context only). Rejects with INVALID_ARGUMENT, INFERENCE_FAILED.
    #[napi(catch_unwind, ts_return_type = "Promise<Array<InferenceScore>>")]
    pub fn score(&self, texts: Vec<String>) -> AsyncTask<ScoreTask> {
        AsyncTask::new(ScoreTask { session: Arc::clone(&self.inner), texts })
    }
}
