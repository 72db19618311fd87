//! Builds a `tokenizers` tokenizer from a GGUF file's `tokenizer.*` metadata, the way llama.cpp
//! reads it: byte-level BPE vocabulary and merges, control (type 3) tokens as special added tokens,
//! user-defined (type 4) tokens as plain added tokens, BOS/EOS/PAD ids, the pre-tokenizer named
//! by `tokenizer.ggml.pre`, and the chat template.
//!
//! candle's `TokenizerFromGguf` is not used: for `pre = "smollm"` it falls back to GPT-2's
//! ByteLevel with a prefix space, which is not what SmolLM2 was trained with.
use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, PreTokenizerWrapper};

use crate::error::{Result, TokenizerError};
use crate::special_tokens::SpecialTokens;

/// What a GGUF file yields: the tokenizer, its special token ids and its chat template.
pub(crate) struct GgufTokenizer {
    pub inner: tokenizers::Tokenizer,
    pub special: SpecialTokens,
    pub chat_template: Option<String>,
}

const CONTROL: i64 = 3;
const USER_DEFINED: i64 = 4;

pub(crate) fn load(path: &Path) -> Result<GgufTokenizer> {
    let mut file = std::fs::File::open(path).map_err(|e| TokenizerError::gguf(path, e))?;
    let content = Content::read(&mut file).map_err(|e| TokenizerError::gguf(path, e))?;
    from_metadata(path, &content.metadata)
}

fn as_int(v: &Value) -> Option<i64> {
    Some(match v {
        Value::U8(x) => i64::from(*x),
        Value::I8(x) => i64::from(*x),
        Value::U16(x) => i64::from(*x),
        Value::I16(x) => i64::from(*x),
        Value::U32(x) => i64::from(*x),
        Value::I32(x) => i64::from(*x),
        Value::U64(x) => i64::try_from(*x).ok()?,
        Value::I64(x) => *x,
        _ => return None,
    })
}

fn strings<'a>(path: &Path, md: &'a HashMap<String, Value>, key: &str) -> Result<Vec<&'a str>> {
    let values = md.get(key).ok_or_else(|| TokenizerError::gguf(path, format!("missing metadata `{key}`")))?;
    let values = values.to_vec().map_err(|_| TokenizerError::gguf(path, format!("`{key}` is not an array")))?;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) => Ok(s.as_str()),
            _ => Err(TokenizerError::gguf(path, format!("`{key}`[{i}] is not a string"))),
        })
        .collect()
}

pub(crate) fn from_metadata(path: &Path, md: &HashMap<String, Value>) -> Result<GgufTokenizer> {
    let model = match md.get("tokenizer.ggml.model") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(TokenizerError::gguf(path, "`tokenizer.ggml.model` is not a string")),
        None => return Err(TokenizerError::gguf(path, "no tokenizer metadata (`tokenizer.ggml.model` missing)")),
    };
    if model != "gpt2" {
        return Err(TokenizerError::GgufUnsupported {
            path: path.into(),
            reason: format!("tokenizer.ggml.model = {model:?}; only byte-level BPE (\"gpt2\") is built"),
        });
    }
    let pre = match md.get("tokenizer.ggml.pre") {
        Some(Value::String(s)) => s.as_str(),
        _ => "gpt2",
    };
    let pre_tokenizer: PreTokenizerWrapper = match pre {
        // llama.cpp: regexes ["\p{N}", GPT-2]; HF's SmolLM2 tokenizer.json: Digits + ByteLevel.
        "smollm" => Sequence::new(vec![Digits::new(true).into(), ByteLevel::new(false, true, true).into()]).into(),
        "gpt2" | "gpt-2" => ByteLevel::new(false, true, true).into(),
        other => {
            return Err(TokenizerError::GgufUnsupported {
                path: path.into(),
                reason: format!("tokenizer.ggml.pre = {other:?}; supported: \"smollm\", \"gpt2\""),
            });
        }
    };

    let tokens = strings(path, md, "tokenizer.ggml.tokens")?;
    let merges = strings(path, md, "tokenizer.ggml.merges")?;
    let types: Vec<i64> = match md.get("tokenizer.ggml.token_type") {
        Some(v) => v
            .to_vec()
            .map_err(|_| TokenizerError::gguf(path, "`tokenizer.ggml.token_type` is not an array"))?
            .iter()
            .map(|t| as_int(t).unwrap_or(1))
            .collect(),
        None => vec![1; tokens.len()],
    };

    let vocab: tokenizers::models::bpe::Vocab = tokens.iter().enumerate().map(|(i, t)| ((*t).to_string(), i as u32)).collect();
    let merges = merges
        .iter()
        .enumerate()
        .map(|(i, m)| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| TokenizerError::gguf(path, format!("merge {i} ({m:?}) is not two tokens")))
        })
        .collect::<Result<Vec<_>>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| TokenizerError::gguf(path, format!("vocabulary and merges do not form a BPE: {e}")))?;

    let mut inner = tokenizers::Tokenizer::new(bpe);
    inner.with_pre_tokenizer(Some(pre_tokenizer));
    inner.with_decoder(Some(ByteLevelDecoder::default()));
    let added = |kind: i64, special: bool| -> Vec<AddedToken> {
        tokens
            .iter()
            .zip(&types)
            .filter(|(_, t)| **t == kind)
            .map(|(tok, _)| AddedToken::from((*tok).to_string(), special).normalized(false))
            .collect()
    };
    inner
        .add_special_tokens(added(CONTROL, true))
        .and_then(|_| inner.add_tokens(added(USER_DEFINED, false)))
        .map_err(|e| TokenizerError::gguf(path, format!("cannot add the control/user-defined tokens: {e}")))?;

    let id = |key: &str| md.get(key).and_then(as_int).and_then(|v| u32::try_from(v).ok()).filter(|&v| (v as usize) < tokens.len());
    let flag = |key: &str| matches!(md.get(key), Some(Value::Bool(true)));
    let special = SpecialTokens {
        bos: id("tokenizer.ggml.bos_token_id"),
        eos: id("tokenizer.ggml.eos_token_id"),
        pad: id("tokenizer.ggml.padding_token_id"),
        unk: id("tokenizer.ggml.unknown_token_id").or_else(|| id("tokenizer.ggml.unk_token_id")),
    };
    let (add_bos, add_eos) = (flag("tokenizer.ggml.add_bos_token"), flag("tokenizer.ggml.add_eos_token"));
    if add_bos || add_eos {
        inner.with_post_processor(Some(template(path, &tokens, special.bos.filter(|_| add_bos), special.eos.filter(|_| add_eos))?));
    }
    let chat_template = match md.get("tokenizer.chat_template") {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    Ok(GgufTokenizer { inner, special, chat_template })
}

/// `add_bos_token` / `add_eos_token` as a TemplateProcessing post-processor.
fn template(path: &Path, tokens: &[&str], bos: Option<u32>, eos: Option<u32>) -> Result<TemplateProcessing> {
    let mut single = Vec::new();
    let mut specials = Vec::new();
    if let Some(b) = bos {
        single.push(tokens[b as usize].to_string());
        specials.push((tokens[b as usize].to_string(), b));
    }
    single.push("$A".to_string());
    if let Some(e) = eos {
        single.push(tokens[e as usize].to_string());
        specials.push((tokens[e as usize].to_string(), e));
    }
    TemplateProcessing::builder()
        .try_single(single)
        .and_then(|b| b.special_tokens(specials).build().map_err(|e| e.to_string()))
        .map_err(|e| TokenizerError::gguf(path, format!("cannot build the BOS/EOS template: {e}")))
}
