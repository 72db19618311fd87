//! The sampling options both generation APIs take (`Generator.generate`'s `GenerateOptions` on
//! the candle model, `InferenceSession`'s `InferOptions` on an export), turned into the core's
//! `GenerateParams` in this one place. napi objects cannot share fields, so each options struct
//! hands its sampling fields over as a `SamplingFields`.
use napi::bindgen_prelude::Either;
use tinyforge_generate as gn;
use tinyforge_tokenizer as tk;

use crate::tokenizer::JsChatMessage;

/// The sampling fields as the JS caller gave them (`None` = not given).
pub struct SamplingFields {
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub top_k: Option<u32>,
    pub top_p: Option<f64>,
    pub min_p: Option<f64>,
    pub repetition_penalty: Option<f64>,
    pub frequency_penalty: Option<f64>,
    pub presence_penalty: Option<f64>,
    pub seed: Option<u32>,
    pub stop: Option<Vec<String>>,
    pub top_logprobs: Option<u32>,
}

/// Fills what the caller left out from `defaults` (the core's, or an export folder's
/// `generation_config.json`) and `default_max_tokens`. Ranges are checked by the core.
pub fn generate_params(f: SamplingFields, defaults: &gn::SamplingParams, default_max_tokens: usize) -> gn::GenerateParams {
    gn::GenerateParams {
        sampling: gn::SamplingParams {
            temperature: f.temperature.unwrap_or(defaults.temperature),
            top_k: f.top_k.map(|k| k as usize).or(defaults.top_k),
            top_p: f.top_p.or(defaults.top_p),
            min_p: f.min_p.or(defaults.min_p),
            repetition_penalty: f.repetition_penalty.unwrap_or(defaults.repetition_penalty),
            frequency_penalty: f.frequency_penalty.unwrap_or(defaults.frequency_penalty),
            presence_penalty: f.presence_penalty.unwrap_or(defaults.presence_penalty),
            seed: f.seed.map_or(0, u64::from),
        },
        max_tokens: f.max_tokens.map_or(default_max_tokens, |n| n as usize),
        stop: f.stop.unwrap_or_default(),
        top_logprobs: f.top_logprobs.map_or(0, |n| n as usize),
    }
}

/// A JS prompt (text, or chat messages) as the core's `Prompt`.
pub fn prompt(p: Either<String, Vec<JsChatMessage>>) -> gn::Prompt {
    match p {
        Either::A(t) => gn::Prompt::Text(t),
        Either::B(m) => gn::Prompt::Messages(m.into_iter().map(|m| tk::ChatMessage::new(m.role, m.content)).collect()),
    }
}
