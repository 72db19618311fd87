//! The single-stream driver: one request on one decoder slot, prompt → prefill → step until a
//! finish reason. A batch scheduler does the same per sequence, with many slots per `step`.
use tinyforge_tokenizer::Tokenizer;

use crate::{
    decoder::{Decoder, Slot},
    error::{GenerateError, Result},
    prompt::{Prompt, build_prompt},
    sequence::{GenerateParams, Generation, Sequence, Step},
};

/// A request: what to complete and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub prompt: Prompt,
    /// See `build_prompt`. `None` = the template when messages are given or the tokenizer has one.
    pub chat_template: Option<bool>,
    pub params: GenerateParams,
}

/// Builds the prompt and generates on slot 0 of `decoder` (released afterwards).
pub fn generate<D: Decoder>(decoder: &mut D, tok: &Tokenizer, eos: &[u32], req: &Request) -> Result<Generation> {
    let ids = build_prompt(tok, &req.prompt, req.chat_template)?;
    generate_ids(decoder, tok, eos, &ids, &req.params, |_| true)
}

/// Generates after prompt `ids` on slot 0; `on_step` sees each step (text deltas for streaming)
/// and returns false to cancel.
pub fn generate_ids<D: Decoder>(
    decoder: &mut D,
    tok: &Tokenizer,
    eos: &[u32],
    ids: &[u32],
    params: &GenerateParams,
    mut on_step: impl FnMut(&Step) -> bool,
) -> Result<Generation> {
    const SLOT: Slot = 0;
    let mut seq = Sequence::new(ids, params.clone(), eos, decoder.context_len())?;
    decoder.release(SLOT);
    let result = (|| {
        let mut logits = decoder.prefill(SLOT, ids).map_err(GenerateError::decoder)?;
        loop {
            let step = seq.accept(&logits, tok)?;
            if !on_step(&step) && !seq.is_finished() {
                on_step(&seq.cancel(tok)?);
            }
            let Some(next) = seq.next_input() else { break };
            logits = decoder.step(&[(SLOT, next)]).map_err(GenerateError::decoder)?;
        }
        Ok(seq.into_generation())
    })();
    decoder.release(SLOT);
    result
}
