//! Teacher-forced scoring of text through an exported decoder: the summed negative
//! log-likelihood of every token given the ones before it, for perplexity (`exp(nll / tokens)`).
//!
//! Long sequences are cut into sliding windows of `window` tokens moved by `stride`; each window
//! is one fresh prefill (empty KV cache, so any export graph works, fused or plain), and a token
//! is scored once, in the first window that gives it at least `window - stride` tokens of context
//! (or from the start). The first token of a text has no context and is not scored. This is
//! exactly the Python reference harness (`test/python/onnx_model.py::perplexity`), so the two
//! figures can be compared digit for digit.
use std::path::Path;

use tinyforge_tokenizer::Tokenizer;

use crate::decoder::KvShape;
use crate::error::InferError;
use crate::session::{HostTensor, OnnxSession, OptimizationLevel, SessionOptions, TensorData};

/// Negative log-likelihood (natural log) summed over `tokens` scored tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Score {
    pub tokens: usize,
    pub nll: f64,
}

impl Score {
    /// `exp(nll / tokens)`; NaN when nothing was scored.
    #[must_use]
    pub fn perplexity(&self) -> f64 {
        if self.tokens == 0 { f64::NAN } else { (self.nll / self.tokens as f64).exp() }
    }
}

/// One ORT session of an export folder's model, used only for scoring.
pub struct Scorer {
    session: OnnxSession,
    shape: KvShape,
    has_position_ids: bool,
    /// Tokens per prefill (512: the logits of one window are 512 × vocab f32, 100 MB for SmolLM2).
    pub window: usize,
    pub stride: usize,
}

impl Scorer {
    /// Loads `model` (an export's `.onnx` with cache geometry `shape`; `threads` = ORT intra-op
    /// threads, `None` = one per core).
    pub fn load(model: &Path, shape: KvShape, threads: Option<usize>) -> Result<Self, InferError> {
        let session = OnnxSession::load(model, &SessionOptions { intra_threads: threads, optimization: OptimizationLevel::All })?;
        let has_position_ids = session.inputs().iter().any(|i| i.name == "position_ids");
        Ok(Self { session, shape, has_position_ids, window: 512, stride: 256 })
    }

    /// Scores each text on its own (tokenized by `tok` without special tokens).
    pub fn score_texts(&mut self, tok: &Tokenizer, texts: &[String]) -> Result<Vec<Score>, InferError> {
        texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let ids =
                    tok.encode(text, false).map_err(|e| InferError::InvalidInput { name: format!("texts[{i}]"), reason: e.to_string() })?;
                self.score_ids(&ids)
            })
            .collect()
    }

    /// Scores one token sequence (see the module doc for the windows).
    pub fn score_ids(&mut self, ids: &[u32]) -> Result<Score, InferError> {
        if self.window < 2 || self.stride == 0 || self.stride >= self.window {
            return Err(InferError::InvalidOption {
                option: "window/stride".into(),
                reason: format!("need 2 <= window and 0 < stride < window, got {} / {}", self.window, self.stride),
            });
        }
        let mut score = Score::default();
        let (mut start, mut scored_to) = (0, 1);
        while ids.len() >= 2 {
            let end = (start + self.window).min(ids.len());
            let logits = self.prefill(&ids[start..end])?;
            let vocab = self.shape.vocab_size;
            for t in scored_to.max(start + 1)..end {
                let row = &logits[(t - start - 1) * vocab..(t - start) * vocab];
                score.nll -= log_softmax_at(row, ids[t] as usize);
                score.tokens += 1;
            }
            scored_to = end;
            if end == ids.len() {
                break;
            }
            start += self.stride;
        }
        Ok(score)
    }

    /// Logits `[ids.len(), vocab]` of one prefill from an empty cache.
    fn prefill(&mut self, ids: &[u32]) -> Result<Vec<f32>, InferError> {
        let n = ids.len() as i64;
        let seq = |v: Vec<i64>| HostTensor { dims: vec![1, n], data: TensorData::I64(v) };
        let mut feeds = vec![
            ("input_ids".to_string(), seq(ids.iter().map(|&t| i64::from(t)).collect())),
            ("attention_mask".to_string(), seq(vec![1; ids.len()])),
        ];
        if self.has_position_ids {
            feeds.push(("position_ids".to_string(), seq((0..n).collect())));
        }
        let empty =
            HostTensor { dims: vec![1, self.shape.kv_heads as i64, 0, self.shape.head_dim as i64], data: TensorData::F32(Vec::new()) };
        for l in 0..self.shape.layers {
            for kind in ["key", "value"] {
                feeds.push((format!("past_key_values.{l}.{kind}"), empty.clone()));
            }
        }
        let out = self.session.run(feeds)?;
        let bad = |reason: String| InferError::Run { reason: format!("scoring: {reason}") };
        let (_, logits) =
            out.into_iter().find(|(name, _)| name == "logits").ok_or_else(|| bad("the model has no `logits` output".into()))?;
        match logits.data {
            TensorData::F32(v) if v.len() == ids.len() * self.shape.vocab_size => Ok(v),
            _ => Err(bad(format!("logits of dims {:?} for {} tokens and vocab {}", logits.dims, ids.len(), self.shape.vocab_size))),
        }
    }
}

/// `log softmax(row)[target]`, in f64 (a 49k-way sum in f32 loses ~1e-4 of perplexity).
fn log_softmax_at(row: &[f32], target: usize) -> f64 {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let sum: f64 = row.iter().map(|&v| f64::from(v - max).exp()).sum();
    f64::from(row[target] - max) - sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_matches_the_closed_form() {
        let row = [1.0f32, 2.0, 3.0];
        let z: f64 = [1.0f64, 2.0, 3.0].iter().map(|v| v.exp()).sum();
        assert!((log_softmax_at(&row, 2) - (3.0 - z.ln())).abs() < 1e-12);
        // Uniform logits: log(1/n) whatever their value.
        assert!((log_softmax_at(&[1000.0; 4], 1) + 4f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn perplexity_of_nothing_is_nan() {
        assert!(Score::default().perplexity().is_nan());
        assert!((Score { tokens: 2, nll: 2.0 }.perplexity() - std::f64::consts::E).abs() < 1e-12);
    }
}
