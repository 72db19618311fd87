//! `SpecialTokens`: the ids a model treats specially (BOS, EOS, pad, unknown), read from a
//! `tokenizer_config.json` or from GGUF metadata (`tokenizer.ggml.*_token_id`). Its own module so
//! that both sources (`tokenizer`, `gguf`) depend on it and not on each other.
use serde_json::Value;

/// Ids of the tokens a model treats specially, when known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub pad: Option<u32>,
    pub unk: Option<u32>,
}

impl SpecialTokens {
    /// From `tokenizer_config.json`: each of `bos_token`, `eos_token`, `pad_token`, `unk_token`
    /// is a token's text or an object with its `content`, mapped to an id by `token_to_id`.
    pub(crate) fn from_config(config: &Value, token_to_id: impl Fn(&str) -> Option<u32>) -> Self {
        let id = |key: &str| {
            let v = &config[key];
            let content = v.as_str().or_else(|| v["content"].as_str())?;
            token_to_id(content)
        };
        Self { bos: id("bos_token"), eos: id("eos_token"), pad: id("pad_token"), unk: id("unk_token") }
    }
}
