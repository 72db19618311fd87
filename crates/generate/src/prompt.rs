//! Prompt building: text or chat messages → token ids, through the tokenizer's chat template
//! when there is one (or when messages are given), as transformers' `apply_chat_template` +
//! `encode` would; plain text otherwise, with the tokenizer's own special tokens (BOS).
use tinyforge_tokenizer::{ChatMessage, ChatOptions, Tokenizer};

use crate::error::{GenerateError, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    Text(String),
    Messages(Vec<ChatMessage>),
}

/// Formats and encodes `prompt`. `chat_template`: `Some(true)` formats a text prompt as one user
/// message; `Some(false)` encodes the raw text (messages joined by newlines); `None` uses the
/// template when messages are given or the tokenizer has one. The template path ends with the
/// assistant's generation prompt.
pub fn build_prompt(tok: &Tokenizer, prompt: &Prompt, chat_template: Option<bool>) -> Result<Vec<u32>> {
    if let Prompt::Messages(m) = prompt
        && m.is_empty()
    {
        return Err(GenerateError::invalid("messages", "is empty"));
    }
    let use_template = chat_template.unwrap_or(matches!(prompt, Prompt::Messages(_)) || tok.chat_template().is_some());
    if use_template {
        let one;
        let messages = match prompt {
            Prompt::Messages(m) => m.as_slice(),
            Prompt::Text(t) => {
                one = [ChatMessage::new("user", t.clone())];
                &one
            }
        };
        let text = tok.apply_chat_template(messages, &ChatOptions { add_generation_prompt: true, tools: None })?;
        // The template already wrote every special token it wants.
        Ok(tok.encode(&text, false)?)
    } else {
        let text = match prompt {
            Prompt::Text(t) => t.clone(),
            Prompt::Messages(m) => m.iter().map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n"),
        };
        Ok(tok.encode(&text, true)?)
    }
}

/// The ids that end a turn: the model config's `eos_token_id`(s) and the tokenizer's EOS.
#[must_use]
pub fn eos_ids(config_eos: &[u32], tok: &Tokenizer) -> Vec<u32> {
    let mut eos = config_eos.to_vec();
    eos.extend(tok.special_tokens().eos);
    eos.sort_unstable();
    eos.dedup();
    eos
}
