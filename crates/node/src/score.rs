//! `Generator.prototype.score(texts)` and `scoreAnswers(chats)`: teacher-forced negative
//! log-likelihood under the candle model (`tinyforge_model::Llama::score`), for eval loss and
//! perplexity. Texts are tokenized without special tokens, as `InferenceSession.score` does for
//! an export, so a run and its export give comparable numbers. An answer is labelled as the
//! trainer labels it (`tinyforge_train::data::encode_answer`). Work runs on a libuv thread.
use std::sync::Arc;

use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Task};
use napi_derive::napi;
use tinyforge_model as md;
use tinyforge_tokenizer as tk;
use tinyforge_train as tr;

use crate::error::{core_error, guard, js_error};
use crate::generate::{Engine, JsGenerator};
use crate::tokenizer::JsChatMessage;

/// One scored text or answer: `nll` (natural log) summed over `tokens` predicted tokens;
/// perplexity = exp(nll / tokens).
#[napi(object, object_from_js = false, js_name = "TextScore")]
pub struct JsTextScore {
    pub tokens: u32,
    pub nll: f64,
    /// Longer than the model's context window: only its first `context` tokens were scored.
    pub truncated: bool,
}

enum Items {
    Texts(Vec<String>),
    Answers(Vec<Vec<tk::ChatMessage>>),
}

pub struct ScoreTask {
    engine: Arc<Engine>,
    items: Items,
}

impl ScoreTask {
    /// Token ids and labels of item `i` (labels `None`: every token after the first counts).
    fn encode(&self, i: usize) -> napi::Result<(Vec<u32>, Option<Vec<bool>>)> {
        let tok = self.engine.tokenizer();
        match &self.items {
            Items::Texts(texts) => {
                if texts[i].is_empty() {
                    return Err(js_error("INVALID_ARGUMENT", format!("texts[{i}] is empty: there is nothing to score")));
                }
                Ok((tok.encode(&texts[i], false).map_err(core_error)?, None))
            }
            Items::Answers(chats) => {
                let (ids, labels) =
                    tr::data::encode_answer(&chats[i], tok).map_err(|e| js_error("INVALID_ARGUMENT", format!("chats[{i}]: {e}")))?;
                Ok((ids, Some(labels)))
            }
        }
    }
}

impl Task for ScoreTask {
    type Output = Vec<md::Score>;
    type JsValue = Vec<JsTextScore>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard("scoring", || {
            let n = match &self.items {
                Items::Texts(t) => t.len(),
                Items::Answers(c) => c.len(),
            };
            (0..n)
                .map(|i| {
                    let (ids, labels) = self.encode(i)?;
                    self.engine.model().score(&ids, labels.as_deref(), md::score::DEFAULT_CHUNK).map_err(core_error)
                })
                .collect()
        })
    }

    fn resolve(&mut self, _env: Env, scores: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(scores
            .into_iter()
            .map(|s| JsTextScore { tokens: u32::try_from(s.tokens).unwrap_or(u32::MAX), nll: s.nll, truncated: s.truncated })
            .collect())
    }
}

#[napi]
impl JsGenerator {
    /// Teacher-forced scores of `texts` (each tokenized without special tokens; its first token
    /// is context only; longer than the context window: cut, `truncated`). Rejects with
    /// INVALID_ARGUMENT (an empty text) or MODEL_COMPUTE.
    #[napi(catch_unwind, ts_return_type = "Promise<Array<TextScore>>")]
    pub fn score(&self, texts: Vec<String>) -> AsyncTask<ScoreTask> {
        AsyncTask::new(ScoreTask { engine: self.engine(), items: Items::Texts(texts) })
    }

    /// Scores the last assistant turn of each chat given the turns before it (the chat template
    /// applied, the answer's end-of-turn marker counted, as training labels it): eval loss.
    /// Rejects with INVALID_ARGUMENT (a chat not ending with an assistant turn),
    /// CHAT_TEMPLATE_MISSING or MODEL_COMPUTE.
    #[napi(catch_unwind, ts_args_type = "chats: Array<Array<ChatMessage>>", ts_return_type = "Promise<Array<TextScore>>")]
    pub fn score_answers(&self, chats: Vec<Vec<JsChatMessage>>) -> AsyncTask<ScoreTask> {
        let chats = chats.into_iter().map(|c| c.into_iter().map(|m| tk::ChatMessage::new(m.role, m.content)).collect()).collect();
        AsyncTask::new(ScoreTask { engine: self.engine(), items: Items::Answers(chats) })
    }
}
