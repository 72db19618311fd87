//! The candle `Llama` as a `tinyforge_generate::Decoder`: one `KvCache` per slot, so the one
//! generation loop (sampling, stops, detokenization in tinyforge-generate) runs on it for
//! training-time evaluation and parity checks. Serving uses the ONNX Runtime decoder instead.
//!
//! `step` runs the slots one after another (`forward_cached` takes one sequence): batching here
//! would only matter for throughput, which is ONNX Runtime's job.
use tinyforge_generate::{CodedError, Decoder, Slot};

use crate::{
    error::{ModelError, Result},
    llama::{Llama, kv_cache::KvCache},
};

impl CodedError for ModelError {
    fn code(&self) -> &'static str {
        ModelError::code(self)
    }
}

/// A borrowed model with its own caches: several decoders can share one `Llama` across threads.
#[derive(Debug)]
pub struct LlamaDecoder<'m> {
    model: &'m Llama,
    caches: Vec<Option<KvCache>>,
}

impl<'m> LlamaDecoder<'m> {
    /// A decoder with `slots` sequences (at least one).
    pub fn new(model: &'m Llama, slots: usize) -> Self {
        Self { model, caches: (0..slots.max(1)).map(|_| None).collect() }
    }

    fn cache(&mut self, slot: Slot) -> Result<&mut KvCache> {
        let n = self.caches.len();
        let model = self.model;
        let c = self.caches.get_mut(slot).ok_or_else(|| ModelError::Input(format!("slot {slot} out of range (0..{n})")))?;
        Ok(c.get_or_insert_with(|| model.new_cache()))
    }
}

impl Decoder for LlamaDecoder<'_> {
    type Error = ModelError;

    fn context_len(&self) -> usize {
        self.model.config().max_position_embeddings
    }

    fn vocab_size(&self) -> usize {
        self.model.config().vocab_size
    }

    fn slots(&self) -> usize {
        self.caches.len()
    }

    fn prefill(&mut self, slot: Slot, tokens: &[u32]) -> Result<Vec<f32>> {
        let model = self.model;
        model.forward_cached(tokens, self.cache(slot)?)
    }

    fn step(&mut self, batch: &[(Slot, u32)]) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(batch.len() * self.vocab_size());
        for &(slot, token) in batch {
            if self.caches.get(slot).is_none_or(Option::is_none) {
                return Err(ModelError::Input(format!("step: slot {slot} was not prefilled")));
            }
            let model = self.model;
            out.extend(model.forward_cached(&[token], self.cache(slot)?)?);
        }
        Ok(out)
    }

    fn release(&mut self, slot: Slot) {
        if let Some(c) = self.caches.get_mut(slot) {
            *c = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TinyOptions, config::LlamaConfig, tiny::random_weights};
    use candle_core::{Device, Tensor};
    use tinyforge_generate::{GenerateParams, SamplingParams, Sequence, argmax};

    fn tiny() -> Llama {
        let cfg: LlamaConfig = TinyOptions { seed: 5, ..Default::default() }.config().unwrap();
        let w = random_weights(&cfg, 5).unwrap();
        Llama::new(cfg, &w).unwrap()
    }

    /// Greedy ids and each token's log-probability by feeding `Sequence` from the decoder
    /// (no tokenizer needed for the ids: the tiny model's own is not involved).
    fn greedy(m: &Llama, prompt: &[u32], n: usize) -> Vec<(u32, Vec<f32>)> {
        let mut d = LlamaDecoder::new(m, 1);
        let mut logits = d.prefill(0, prompt).unwrap();
        let mut out = Vec::new();
        for _ in 0..n {
            let t = argmax(&logits);
            out.push((t, logits.clone()));
            logits = d.step(&[(0, t)]).unwrap();
        }
        out
    }

    #[test]
    fn kv_cache_greedy_equals_full_recompute() {
        let m = tiny();
        let prompt = [1u32, 40, 300, 77, 12];
        let mut ids = prompt.to_vec();
        for (step, (tok, cached)) in greedy(&m, &prompt, 12).into_iter().enumerate() {
            let input = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
            let logits = m.forward(&input, crate::ForwardMode::Eval).unwrap();
            let last: Vec<f32> = logits.narrow(1, ids.len() - 1, 1).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(argmax(&last), tok, "step {step}");
            let d = last.iter().zip(&cached).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(d < 1e-4, "step {step}: {d}");
            ids.push(tok);
        }
    }

    #[test]
    fn cached_logits_match_recompute_for_a_multi_token_chunk() {
        let m = tiny();
        let mut d = LlamaDecoder::new(&m, 2);
        d.prefill(1, &[1, 2, 3]).unwrap();
        let chunked = d.prefill(1, &[4, 5, 6]).unwrap();
        let full = m.last_logits(&[1, 2, 3, 4, 5, 6]).unwrap();
        let diff = chunked.iter().zip(&full).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-4, "{diff}");
    }

    #[test]
    fn slots_are_independent_and_released() {
        let m = tiny();
        let mut d = LlamaDecoder::new(&m, 2);
        let a0 = d.prefill(0, &[1, 9, 4]).unwrap();
        let b0 = d.prefill(1, &[7]).unwrap();
        let rows = d.step(&[(1, argmax(&b0)), (0, argmax(&a0))]).unwrap();
        let v = d.vocab_size();
        let want_a = m.last_logits(&[1, 9, 4, argmax(&a0)]).unwrap();
        let diff = rows[v..].iter().zip(&want_a).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-4, "{diff}");
        d.release(0);
        assert_eq!(d.step(&[(0, 3)]).unwrap_err().code(), "INVALID_ARGUMENT");
        assert_eq!(d.prefill(2, &[1]).unwrap_err().code(), "INVALID_ARGUMENT");
    }

    #[test]
    fn seeded_sampling_through_sequence_is_reproducible() {
        let m = tiny();
        let run = |seed| {
            let p = GenerateParams {
                sampling: SamplingParams {
                    temperature: 1.0,
                    top_k: Some(50),
                    top_p: Some(0.9),
                    repetition_penalty: 1.2,
                    seed,
                    ..Default::default()
                },
                max_tokens: 10,
                ..Default::default()
            };
            let mut d = LlamaDecoder::new(&m, 1);
            let mut s = Sequence::new(&[1, 9], p, &[], d.context_len()).unwrap();
            let mut logits = d.prefill(0, &[1, 9]).unwrap();
            let tok = tinyforge_tokenizer::Tokenizer::from_json(&tiny_tokenizer_json()).unwrap();
            loop {
                s.accept(&logits, &tok).unwrap();
                let Some(t) = s.next_input() else { break };
                logits = d.step(&[(0, t)]).unwrap();
            }
            s.generation().tokens
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    /// A word-level tokenizer over the tiny model's 512 ids, enough to decode anything it emits.
    fn tiny_tokenizer_json() -> String {
        let vocab: Vec<String> = (0..512).map(|i| format!("\"t{i}\": {i}")).collect();
        format!(
            r#"{{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,"pre_tokenizer":null,"post_processor":null,"decoder":null,"model":{{"type":"WordLevel","vocab":{{{}}},"unk_token":"t0"}}}}"#,
            vocab.join(",")
        )
    }
}
