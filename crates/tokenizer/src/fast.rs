//! The fast encoder for byte-level BPE tokenizers (GPT-2 / SmolLM2 layout). It is built from the
//! same `tokenizer.json` the `tokenizers` crate runs, and only when every stage of that file is one
//! it reproduces exactly: no normalizer, the ByteLevel pre-tokenizer (optionally after an
//! individual-digit split), a plain BPE model, no truncation or padding, added tokens without
//! strip/single-word rules. Anything else returns `None` and the `tokenizers` crate is used.
use aho_corasick::{AhoCorasick, MatchKind};
use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::bpe::{ByteBpe, MISSING};
use crate::pretokenize::split_words;

/// GPT-2's reversible byte → printable character mapping (`bytes_to_unicode`).
pub(crate) fn byte_chars() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut shifted = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        let cp = if printable {
            u32::from(b)
        } else {
            shifted += 1;
            255 + shifted
        };
        out[b as usize] = char::from_u32(cp).expect("valid code point");
    }
    out
}

/// Ids to put around the text when `add_special_tokens` is set.
#[derive(Debug, Default)]
struct Wrap {
    prefix: Vec<u32>,
    suffix: Vec<u32>,
}

/// Added tokens split out before pre-tokenization: first those matched on raw text, then those
/// matched on normalized text (the same as raw here, since there is no normalizer).
#[derive(Debug)]
struct AddedTokens {
    passes: Vec<(AhoCorasick, Vec<u32>)>,
}

#[derive(Debug)]
pub(crate) struct FastEncoder {
    bpe: ByteBpe,
    split_digits: bool,
    added: AddedTokens,
    /// `None` when the post-processor is one we do not reproduce (then `add_special_tokens = true`
    /// goes through the `tokenizers` crate).
    wrap: Option<Wrap>,
}

enum Piece<'a> {
    Text(&'a str),
    Token(u32),
}

impl FastEncoder {
    /// Builds the fast path from a serialized `tokenizer.json`, or `None` if it does not apply.
    pub(crate) fn from_tokenizer_json(json: &Value) -> Option<Self> {
        if !json["normalizer"].is_null() || !json["truncation"].is_null() || !json["padding"].is_null() {
            return None;
        }
        let split_digits = pre_tokenizer_layout(&json["pre_tokenizer"])?;
        let bpe = bpe_model(&json["model"])?;
        let added = added_tokens(&json["added_tokens"])?;
        let wrap = post_processor_wrap(&json["post_processor"]);
        Some(Self { bpe, split_digits, added, wrap })
    }

    pub(crate) fn handles(&self, add_special_tokens: bool) -> bool {
        !add_special_tokens || self.wrap.is_some()
    }

    /// Token ids of `text`; call only when `handles(add_special_tokens)`.
    pub(crate) fn encode(&self, text: &str, add_special_tokens: bool) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 4);
        let wrap = self.wrap.as_ref().filter(|_| add_special_tokens);
        if let Some(w) = wrap {
            out.extend_from_slice(&w.prefix);
        }
        self.bpe.with_cache(|cache| {
            self.added.split(text, 0, &mut |piece| match piece {
                Piece::Token(id) => out.push(id),
                Piece::Text(t) => split_words(t, self.split_digits, &mut |w| {
                    self.bpe.encode_word(w.as_bytes(), cache, &mut out);
                }),
            });
        });
        if let Some(w) = wrap {
            out.extend_from_slice(&w.suffix);
        }
        out
    }
}

impl AddedTokens {
    fn split<'a>(&self, text: &'a str, pass: usize, f: &mut impl FnMut(Piece<'a>)) {
        let Some((matcher, ids)) = self.passes.get(pass) else {
            if !text.is_empty() {
                f(Piece::Text(text));
            }
            return;
        };
        let mut last = 0;
        for m in matcher.find_iter(text) {
            if m.start() > last {
                self.split(&text[last..m.start()], pass + 1, f);
            }
            f(Piece::Token(ids[m.pattern().as_usize()]));
            last = m.end();
        }
        if last < text.len() {
            self.split(&text[last..], pass + 1, f);
        }
    }
}

/// `Some(split_digits)` for the two layouts we reproduce.
fn pre_tokenizer_layout(pre: &Value) -> Option<bool> {
    let is_byte_level = |v: &Value| v["type"] == "ByteLevel" && v["add_prefix_space"] == false && v["use_regex"] != false;
    if is_byte_level(pre) {
        return Some(false);
    }
    let steps = pre["pretokenizers"].as_array().filter(|_| pre["type"] == "Sequence")?;
    match steps.as_slice() {
        [digits, bl] if digits["type"] == "Digits" && digits["individual_digits"] == true && is_byte_level(bl) => Some(true),
        [bl] if is_byte_level(bl) => Some(false),
        _ => None,
    }
}

fn bpe_model(model: &Value) -> Option<ByteBpe> {
    let empty_or_null = |v: &Value| v.is_null() || v == "";
    if model["type"] != "BPE"
        || !model["dropout"].is_null()
        || !empty_or_null(&model["continuing_subword_prefix"])
        || !empty_or_null(&model["end_of_word_suffix"])
        || model["byte_fallback"] == true
    {
        return None;
    }
    let vocab: FxHashMap<&str, u32> =
        model["vocab"].as_object()?.iter().map(|(k, v)| Some((k.as_str(), u32::try_from(v.as_u64()?).ok()?))).collect::<Option<_>>()?;
    let chars = byte_chars();
    let mut byte_ids = [MISSING; 256];
    for (b, c) in chars.iter().enumerate() {
        if let Some(id) = vocab.get(c.encode_utf8(&mut [0; 4]) as &str) {
            byte_ids[b] = *id;
        }
    }
    let unk = match model["unk_token"].as_str() {
        Some(t) => Some((*vocab.get(t)?, model["fuse_unk"] == true)),
        None => None,
    };
    let mut merges = Vec::new();
    for m in model["merges"].as_array()? {
        let (left, right) = match m {
            Value::String(s) => s.split_once(' ')?,
            Value::Array(pair) => (pair.first()?.as_str()?, pair.get(1)?.as_str()?),
            _ => return None,
        };
        let merged = format!("{left}{right}");
        merges.push((*vocab.get(left)?, *vocab.get(right)?, *vocab.get(merged.as_str())?));
    }
    let whole_words = (model["ignore_merges"] == true).then(|| {
        let char_byte: FxHashMap<char, u8> = chars.iter().enumerate().map(|(b, c)| (*c, b as u8)).collect();
        vocab
            .iter()
            .filter_map(|(token, id)| {
                let bytes: Option<Vec<u8>> = token.chars().map(|c| char_byte.get(&c).copied()).collect();
                Some((bytes?.into_boxed_slice(), *id))
            })
            .collect()
    });
    Some(ByteBpe::new(byte_ids, unk, merges, whole_words))
}

fn added_tokens(list: &Value) -> Option<AddedTokens> {
    let mut raw: (Vec<String>, Vec<u32>) = Default::default();
    let mut normalized: (Vec<String>, Vec<u32>) = Default::default();
    for token in list.as_array().map(Vec::as_slice).unwrap_or_default() {
        if token["single_word"] == true || token["lstrip"] == true || token["rstrip"] == true {
            return None;
        }
        // An empty added token would match everywhere; leave such a file to `tokenizers`.
        let content = token["content"].as_str().filter(|c| !c.is_empty())?.to_string();
        let id = u32::try_from(token["id"].as_u64()?).ok()?;
        let target = if token["normalized"] == true { &mut normalized } else { &mut raw };
        target.0.push(content);
        target.1.push(id);
    }
    let mut passes = Vec::new();
    for (patterns, ids) in [raw, normalized] {
        if !patterns.is_empty() {
            let matcher = AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(&patterns).ok()?;
            passes.push((matcher, ids));
        }
    }
    Some(AddedTokens { passes })
}

/// The ids a post-processor adds around a single sequence, for the processors that only add
/// fixed special tokens (none, ByteLevel, TemplateProcessing, or a Sequence of those).
fn post_processor_wrap(post: &Value) -> Option<Wrap> {
    match post["type"].as_str() {
        None => post.is_null().then(Wrap::default),
        Some("ByteLevel") => Some(Wrap::default()),
        Some("Sequence") => {
            let mut wrap = Wrap::default();
            for p in post["processors"].as_array()? {
                let w = post_processor_wrap(p)?;
                if !(w.prefix.is_empty() && w.suffix.is_empty()) {
                    if !(wrap.prefix.is_empty() && wrap.suffix.is_empty()) {
                        return None;
                    }
                    wrap = w;
                }
            }
            Some(wrap)
        }
        Some("TemplateProcessing") => {
            let mut wrap = Wrap::default();
            let mut seen_sequence = false;
            for piece in post["single"].as_array()? {
                if let Some(special) = piece.get("SpecialToken") {
                    let name = special["id"].as_str()?;
                    let ids = post["special_tokens"][name]["ids"].as_array()?;
                    let ids: Vec<u32> = ids.iter().map(|v| u32::try_from(v.as_u64()?).ok()).collect::<Option<_>>()?;
                    if seen_sequence { &mut wrap.suffix } else { &mut wrap.prefix }.extend(ids);
                } else if piece["Sequence"]["id"] == "A" && !seen_sequence {
                    seen_sequence = true;
                } else {
                    return None;
                }
            }
            seen_sequence.then_some(wrap)
        }
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_chars_is_gpt2_mapping() {
        let c = byte_chars();
        assert_eq!(c[b'!' as usize], '!');
        assert_eq!(c[b' ' as usize], 'Ġ');
        assert_eq!(c[b'\n' as usize], 'Ċ');
        assert_eq!(c[0], 'Ā');
        let mut all: Vec<char> = c.to_vec();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 256);
    }
}
