//! The interface between the generation loop and a model: a decoder keeps one KV cache per
//! *slot* (one running sequence) and turns token ids into next-token logits. It knows nothing of
//! sampling, text or stopping; `Sequence` does that. A single-stream decoder is one with one slot.
//!
//! Designed for continuous batching: `step` advances any set of slots by one token each in one
//! forward pass, so sequences join (after `prefill`) and leave (`release`) between steps. A long
//! prompt can be prefilled in chunks (several `prefill` calls on one slot, in order), so a
//! scheduler can interleave a new request's prefill with the running decodes.
use crate::error::CodedError;

/// Index of a KV-cache slot, in `0..decoder.slots()`.
pub type Slot = usize;

pub trait Decoder {
    type Error: CodedError;

    /// Maximum positions (prompt + generated) one slot holds.
    fn context_len(&self) -> usize;

    /// Length of each logits row (the model's vocabulary, which may exceed the tokenizer's).
    fn vocab_size(&self) -> usize;

    /// How many sequences can be live at once.
    fn slots(&self) -> usize;

    /// Appends `tokens` (at least one) to `slot`'s cache, after whatever it already holds (empty
    /// after `release`), and returns the logits `[vocab_size]` at the last new position.
    fn prefill(&mut self, slot: Slot, tokens: &[u32]) -> Result<Vec<f32>, Self::Error>;

    /// Appends one token to each listed slot (each slot at most once, each already prefilled)
    /// in one forward pass and returns the logits row-major `[batch.len() × vocab_size]`, row
    /// `i` for `batch[i]`.
    fn step(&mut self, batch: &[(Slot, u32)]) -> Result<Vec<f32>, Self::Error>;

    /// Forgets `slot`'s cache so a new sequence can use it. Releasing an empty slot is a no-op.
    fn release(&mut self, slot: Slot);
}
