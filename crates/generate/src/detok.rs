//! Incremental detokenization for streaming: text deltas whose concatenation is the decoded
//! completion, never half a UTF-8 character.
//!
//! Decoding one token at a time is wrong twice over: a byte-level token may hold only part of a
//! character (decoders render the partial bytes as U+FFFD), and SentencePiece-style decoders
//! strip or add spaces depending on the neighbours. So each step decodes a short window of
//! recent tokens twice, with and without the new ones, and emits the difference; while the
//! window's text ends in U+FFFD the bytes are held back until a later token completes them (the
//! approach of HF text-generation-inference and vLLM).
use tinyforge_tokenizer::Tokenizer;

use crate::error::Result;

/// Tokens of already-emitted context decoded before the new ones; enough for any decoder's
/// space handling to see its left neighbour.
const CONTEXT: usize = 5;

#[derive(Debug, Clone, Default)]
pub struct Detokenizer {
    tokens: Vec<u32>,
    /// Start of the window decoded each step.
    prefix: usize,
    /// Tokens before this index have had their text emitted.
    read: usize,
}

impl Detokenizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one generated token; returns the text it completes (often empty while a multi-byte
    /// character is incomplete).
    pub fn push(&mut self, tok: &Tokenizer, token: u32) -> Result<String> {
        self.tokens.push(token);
        let before = tok.decode(&self.tokens[self.prefix..self.read], true)?;
        let after = tok.decode(&self.tokens[self.prefix..], true)?;
        if after.len() <= before.len() || after.ends_with('\u{FFFD}') || !after.is_char_boundary(before.len()) {
            return Ok(String::new());
        }
        let delta = after[before.len()..].to_string();
        self.read = self.tokens.len();
        self.prefix = self.read.saturating_sub(CONTEXT);
        Ok(delta)
    }

    /// The text still held back at the end of generation (an incomplete character, rendered as
    /// the decoder does, usually U+FFFD), so that the deltas add up to the whole decode.
    pub fn flush(&mut self, tok: &Tokenizer) -> Result<String> {
        let before = tok.decode(&self.tokens[self.prefix..self.read], true)?;
        let after = tok.decode(&self.tokens[self.prefix..], true)?;
        self.read = self.tokens.len();
        Ok(after.get(before.len()..).map(str::to_string).unwrap_or_default())
    }
}
