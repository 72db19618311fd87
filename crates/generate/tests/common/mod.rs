//! Test fixtures: a byte-level BPE tokenizer with one token per byte (ids 0-255 = the byte
//! values, no merges, so every multi-byte character spans several tokens) plus `<eos>` = 256,
//! and two decoders without a neural network: one that follows a script, one whose logits are a
//! hash of each slot's history (a stand-in language model that is deterministic per history).
#![allow(dead_code)]
use std::collections::HashMap;
use std::fmt;

use tinyforge_generate::{CodedError, Decoder, Slot};
use tinyforge_tokenizer::Tokenizer;

pub const EOS: u32 = 256;
pub const VOCAB: usize = 257;

/// GPT-2's byte → printable character map (the ByteLevel pre-tokenizer's alphabet).
fn byte_char(b: u8) -> char {
    let printable = |b: u8| (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
    if printable(b) {
        return char::from(b);
    }
    let n = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + n).unwrap()
}

pub fn byte_tokenizer() -> Tokenizer {
    let vocab: serde_json::Map<String, serde_json::Value> = (0..=255u8).map(|b| (byte_char(b).to_string(), b.into())).collect();
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [{ "id": EOS, "content": "<eos>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true }],
        "normalizer": null,
        "pre_tokenizer": { "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true },
        "post_processor": null,
        "decoder": { "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true },
        "model": { "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
                   "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": [] }
    });
    Tokenizer::from_json(&json.to_string()).unwrap()
}

#[derive(Debug)]
pub struct FakeError(pub String);

impl fmt::Display for FakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FakeError {}

impl CodedError for FakeError {
    fn code(&self) -> &'static str {
        "FAKE_DECODER"
    }
}

/// Logits that make `token` the clear favourite (logit 10, every other 0).
pub fn peak(token: u32) -> Vec<f32> {
    let mut l = vec![0.0; VOCAB];
    l[token as usize] = 10.0;
    l
}

/// Emits `script[i]` as the favourite at generated position i (then EOS), whatever the input.
pub struct ScriptDecoder {
    pub script: Vec<u32>,
    pub context: usize,
    pub pos: HashMap<Slot, usize>,
}

impl ScriptDecoder {
    pub fn new(text: &str, context: usize) -> Self {
        Self { script: text.bytes().map(u32::from).collect(), context, pos: HashMap::new() }
    }

    fn next(&mut self, slot: Slot) -> Vec<f32> {
        let p = self.pos.entry(slot).or_default();
        let t = self.script.get(*p).copied().unwrap_or(EOS);
        *p += 1;
        peak(t)
    }
}

impl Decoder for ScriptDecoder {
    type Error = FakeError;
    fn context_len(&self) -> usize {
        self.context
    }
    fn vocab_size(&self) -> usize {
        VOCAB
    }
    fn slots(&self) -> usize {
        4
    }
    fn prefill(&mut self, slot: Slot, _tokens: &[u32]) -> Result<Vec<f32>, FakeError> {
        Ok(self.next(slot))
    }
    fn step(&mut self, batch: &[(Slot, u32)]) -> Result<Vec<f32>, FakeError> {
        Ok(batch.iter().flat_map(|&(s, _)| self.next(s)).collect())
    }
    fn release(&mut self, slot: Slot) {
        self.pos.remove(&slot);
    }
}

/// Logits are a hash of the slot's whole history: like a model, the next-token distribution
/// depends on every token before it, and slots are independent.
pub struct HashDecoder {
    pub history: HashMap<Slot, Vec<u32>>,
    pub steps: usize,
}

impl HashDecoder {
    pub fn new() -> Self {
        Self { history: HashMap::new(), steps: 0 }
    }

    fn logits(h: &[u32]) -> Vec<f32> {
        let mut x = h.iter().fold(0xcbf2_9ce4_8422_2325u64, |a, &t| (a ^ u64::from(t)).wrapping_mul(0x100_0000_01b3));
        (0..VOCAB)
            .map(|v| {
                x = (x ^ v as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
                // Printable ASCII gets a head start so texts are readable; EOS is rare.
                let bias = if (32..127).contains(&v) {
                    2.0
                } else if v == EOS as usize {
                    -2.0
                } else {
                    0.0
                };
                bias + (x >> 40) as f32 / (1u64 << 24) as f32 * 3.0
            })
            .collect()
    }
}

impl Decoder for HashDecoder {
    type Error = FakeError;
    fn context_len(&self) -> usize {
        64
    }
    fn vocab_size(&self) -> usize {
        VOCAB
    }
    fn slots(&self) -> usize {
        8
    }
    fn prefill(&mut self, slot: Slot, tokens: &[u32]) -> Result<Vec<f32>, FakeError> {
        let h = self.history.entry(slot).or_default();
        h.extend_from_slice(tokens);
        Ok(Self::logits(h))
    }
    fn step(&mut self, batch: &[(Slot, u32)]) -> Result<Vec<f32>, FakeError> {
        self.steps += 1;
        let mut out = Vec::new();
        for &(slot, t) in batch {
            let h = self.history.get_mut(&slot).ok_or_else(|| FakeError(format!("slot {slot} not prefilled")))?;
            h.push(t);
            out.extend(Self::logits(h));
        }
        Ok(out)
    }
    fn release(&mut self, slot: Slot) {
        self.history.remove(&slot);
    }
}
