//! Teacher-forced scoring: the summed negative log-likelihood of a token sequence under the model,
//! `Σ_j −log softmax(logits_{j−1})[ids_j]` over the positions `j ≥ 1` that are labelled (all of
//! them, or only an answer's tokens for eval loss). Perplexity is `exp(nll / tokens)`.
//!
//! The sequence goes through the KV cache in chunks of positions, so memory is bounded by one
//! chunk's activations and logits (256 positions × 49,152 SmolLM2 tokens × 4 bytes = 50 MB)
//! rather than growing with the sequence: a 2,048-token text in one pass would hold 400 MB of
//! logits plus `[heads, s, s]` attention scores. Chunking changes only the order of the sums (a
//! test checks it agrees with one full forward pass). Eval kernels only; no gradients.
use candle_core::{D, DType, Tensor};

use crate::{
    error::{ModelError, Result},
    llama::Llama,
};

/// Positions per forward chunk (see the module docs for the memory this bounds).
pub const DEFAULT_CHUNK: usize = 256;

/// What scoring one sequence measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Score {
    /// Tokens whose likelihood was counted (labelled positions after the first).
    pub tokens: usize,
    /// Summed negative log-likelihood (nats) over those tokens.
    pub nll: f64,
    /// The sequence was longer than the context window; only its first `context` tokens count.
    pub truncated: bool,
}

impl Score {
    /// Mean NLL per token, `None` when nothing was scored.
    pub fn mean(&self) -> Option<f64> {
        (self.tokens > 0).then(|| self.nll / self.tokens as f64)
    }
}

impl Llama {
    /// Scores `ids` teacher-forced: token `j` is counted when `labels[j]` (every `j ≥ 1` when
    /// `labels` is `None`), predicted from the tokens before it. Sequences longer than the
    /// context window are cut to it (`Score::truncated`): positions past it have no trained
    /// rotary angle. `chunk` (≥ 1) positions run per forward pass.
    pub fn score(&self, ids: &[u32], labels: Option<&[bool]>, chunk: usize) -> Result<Score> {
        if let Some(l) = labels
            && l.len() != ids.len()
        {
            return Err(ModelError::Input(format!("score: {} labels for {} token ids", l.len(), ids.len())));
        }
        if chunk == 0 {
            return Err(ModelError::Input("score: chunk must be at least 1".into()));
        }
        let context = self.config().max_position_embeddings;
        let truncated = ids.len() > context;
        let ids = &ids[..ids.len().min(context)];
        let counted = |j: usize| labels.is_none_or(|l| l[j]);
        let mut score = Score { truncated, ..Score::default() };
        // Nothing to predict: no token after the first is counted, so no forward pass is needed.
        if !(1..ids.len()).any(counted) {
            return Ok(score);
        }
        let mut cache = self.new_cache();
        for start in (0..ids.len()).step_by(chunk) {
            let end = (start + chunk).min(ids.len());
            let hidden = self.forward_cached_hidden(&ids[start..end], &mut cache)?.squeeze(0)?;
            // Position p predicts token p + 1; keep the rows whose target is counted.
            let rows: Vec<u32> = (start..end).filter(|&p| p + 1 < ids.len() && counted(p + 1)).map(|p| (p - start) as u32).collect();
            if rows.is_empty() {
                continue;
            }
            let targets: Vec<u32> = rows.iter().map(|&r| ids[start + r as usize + 1]).collect();
            let picked = hidden.index_select(&Tensor::new(rows.as_slice(), hidden.device())?, 0)?;
            score.nll += nll_sum(&self.lm_head(&picked)?, &targets)?;
            score.tokens += targets.len();
        }
        Ok(score)
    }
}

/// `Σ_rows logsumexp(row) − row[target]` for logits `[rows, vocab]`, summed in f64.
fn nll_sum(logits: &Tensor, targets: &[u32]) -> Result<f64> {
    let logits = logits.to_dtype(DType::F32)?;
    let lse = logits.max_keepdim(D::Minus1)?;
    let shifted = logits.broadcast_sub(&lse)?;
    let lse = (shifted.exp()?.sum_keepdim(D::Minus1)?.log()? + lse)?.squeeze(1)?.to_vec1::<f32>()?;
    let index = Tensor::new(targets, logits.device())?.unsqueeze(1)?;
    let picked = logits.gather(&index, 1)?.squeeze(1)?.to_vec1::<f32>()?;
    Ok(lse.iter().zip(&picked).map(|(&l, &p)| f64::from(l) - f64::from(p)).sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ForwardMode, TinyOptions, config::LlamaConfig, tiny::random_weights};
    use candle_core::Device;

    fn tiny(context: usize) -> Llama {
        let mut cfg: LlamaConfig = TinyOptions { seed: 3, ..Default::default() }.config().unwrap();
        cfg.max_position_embeddings = context;
        let w = random_weights(&cfg, 3).unwrap();
        Llama::new(cfg, &w).unwrap()
    }

    fn ids(n: usize) -> Vec<u32> {
        (0..n).map(|i| ((i * 37 + 11) % 500) as u32).collect()
    }

    /// The reference: one full forward pass, softmax of every row by hand in f64.
    fn reference(m: &Llama, ids: &[u32], labels: Option<&[bool]>) -> (usize, f64) {
        let input = Tensor::new(ids, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let logits: Vec<Vec<f32>> = m.forward(&input, ForwardMode::Eval).unwrap().squeeze(0).unwrap().to_vec2().unwrap();
        let (mut n, mut nll) = (0, 0f64);
        for j in 1..ids.len() {
            if labels.is_some_and(|l| !l[j]) {
                continue;
            }
            let row = &logits[j - 1];
            let z: f64 = row.iter().map(|&v| f64::from(v).exp()).sum();
            nll -= (f64::from(row[ids[j] as usize]).exp() / z).ln();
            n += 1;
        }
        (n, nll)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-4 * b.abs().max(1.0)
    }

    #[test]
    fn nll_equals_the_sum_of_per_token_log_softmax_of_a_full_pass() {
        let m = tiny(2048);
        let seq = ids(40);
        let s = m.score(&seq, None, DEFAULT_CHUNK).unwrap();
        let (n, want) = reference(&m, &seq, None);
        assert_eq!(s.tokens, 39);
        assert_eq!(n, 39);
        assert!(close(s.nll, want), "{} vs {want}", s.nll);
        // A random 512-token model is near uniform: the mean is close to ln 512 = 6.24 nats.
        assert!((s.mean().unwrap() - 512f64.ln()).abs() < 1.0, "{:?}", s.mean());
        assert!(!s.truncated);
    }

    #[test]
    fn chunked_scoring_equals_one_pass_and_labels_select_tokens() {
        let m = tiny(2048);
        let seq = ids(50);
        let whole = m.score(&seq, None, 1000).unwrap();
        for chunk in [1, 3, 7, 49] {
            let s = m.score(&seq, None, chunk).unwrap();
            assert_eq!(s.tokens, whole.tokens);
            assert!(close(s.nll, whole.nll), "chunk {chunk}: {} vs {}", s.nll, whole.nll);
        }
        let labels: Vec<bool> = (0..seq.len()).map(|j| j >= 30).collect();
        let (n, want) = reference(&m, &seq, Some(&labels));
        for chunk in [4, 256] {
            let s = m.score(&seq, Some(&labels), chunk).unwrap();
            assert_eq!((s.tokens, n), (20, 20));
            assert!(close(s.nll, want), "chunk {chunk}: {} vs {want}", s.nll);
        }
    }

    #[test]
    fn short_long_and_bad_input() {
        let m = tiny(32);
        assert_eq!(m.score(&[5], None, 8).unwrap(), Score::default());
        assert_eq!(m.score(&[], None, 8).unwrap(), Score::default());
        assert_eq!(m.score(&[5, 6, 7], Some(&[true, false, false]), 8).unwrap().tokens, 0);
        let long = m.score(&ids(40), None, 8).unwrap();
        assert!(long.truncated);
        assert_eq!(long.tokens, 31);
        let (_, want) = reference(&m, &ids(32), None);
        assert!(close(long.nll, want), "{} vs {want}", long.nll);
        assert_eq!(m.score(&[1, 2], Some(&[true]), 8).unwrap_err().code(), "INVALID_ARGUMENT");
        assert_eq!(m.score(&[1, 2], None, 0).unwrap_err().code(), "INVALID_ARGUMENT");
        assert_eq!(m.score(&[1, 9999], None, 8).unwrap_err().code(), "INVALID_ARGUMENT");
    }
}
