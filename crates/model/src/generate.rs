//! Text generation over token ids: the prompt goes through `Llama::forward_cached` once, then one
//! token per step from the KV cache. Greedy (temperature 0) or sampling with temperature, top-k,
//! top-p and a repetition penalty, from a seeded generator so the same seed gives the same
//! tokens. Stops at an EOS id, after `max_tokens`, or when the caller's `stop` check says so
//! (the binding decodes and looks for stop strings there).
//!
//! Each chosen token's probability is reported under the model's own distribution (softmax of
//! the raw logits, temperature 1, no penalty), so `mean(probs)` is a confidence that does not
//! change with the sampling settings.
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::{
    error::{ModelError, Result},
    llama::Llama,
};

#[derive(Debug, Clone)]
pub struct SamplingOptions {
    pub max_tokens: usize,
    /// 0 = greedy (argmax).
    pub temperature: f64,
    /// Keep only the k most likely tokens (0 or `None` = all).
    pub top_k: Option<usize>,
    /// Keep the smallest set whose probability reaches p (`None` or 1 = all).
    pub top_p: Option<f64>,
    /// CTRL-style (Keskar et al. 2019): logits of tokens already in prompt or output are divided
    /// by it when positive, multiplied when negative. 1 = off.
    pub repetition_penalty: f64,
    pub seed: u64,
}

impl Default for SamplingOptions {
    fn default() -> Self {
        Self { max_tokens: 128, temperature: 0.0, top_k: None, top_p: None, repetition_penalty: 1.0, seed: 0 }
    }
}

impl SamplingOptions {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(format!("temperature must be >= 0, got {}", self.temperature));
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(format!("topP must be in (0, 1], got {p}"));
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return Err(format!("repetitionPenalty must be > 0, got {}", self.repetition_penalty));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Eos,
    MaxTokens,
    /// The caller's stop check matched (a stop string).
    Stop,
}

#[derive(Debug, Clone)]
pub struct Generation {
    /// Generated ids (an EOS that ended generation is not included).
    pub tokens: Vec<u32>,
    /// Model probability of each generated token.
    pub probs: Vec<f32>,
    /// Model probability of the EOS that ended generation, if one did.
    pub eos_prob: Option<f32>,
    pub stop: StopReason,
}

impl Generation {
    /// Mean probability of every choice made (the generated tokens and the closing EOS), in
    /// (0, 1]; `None` when no choice was made (`max_tokens` 0).
    pub fn confidence(&self) -> Option<f64> {
        let all: Vec<f64> = self.probs.iter().chain(&self.eos_prob).map(|&p| p as f64).collect();
        (!all.is_empty()).then(|| all.iter().sum::<f64>() / all.len() as f64)
    }
}

fn softmax(logits: &[f32], temperature: f64) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exps: Vec<f64> = logits.iter().map(|&l| ((l as f64 - max) / temperature).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// First index of the maximum (ties resolve like `argmax` in PyTorch/NumPy).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Picks the next token from `logits` (already penalised).
fn pick(logits: &[f32], opts: &SamplingOptions, rng: &mut StdRng) -> u32 {
    if opts.temperature == 0.0 {
        return argmax(logits);
    }
    let probs = softmax(logits, opts.temperature);
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
    if let Some(k) = opts.top_k.filter(|&k| k > 0) {
        order.truncate(k);
    }
    if let Some(p) = opts.top_p.filter(|&p| p < 1.0) {
        let mut acc = 0.0;
        let keep = order.iter().position(|&i| {
            acc += probs[i];
            acc >= p
        });
        order.truncate(keep.map_or(order.len(), |n| n + 1));
    }
    let total: f64 = order.iter().map(|&i| probs[i]).sum();
    let mut u = rng.random::<f64>() * total;
    for &i in &order {
        u -= probs[i];
        if u <= 0.0 {
            return i as u32;
        }
    }
    *order.last().expect("at least one candidate") as u32
}

/// Generates after `prompt`. `eos` ends generation (not included in the output); `stop` gets
/// the tokens generated so far after each step and returns true to end there.
pub fn generate(
    model: &Llama,
    prompt: &[u32],
    eos: &[u32],
    opts: &SamplingOptions,
    mut stop: impl FnMut(&[u32]) -> bool,
) -> Result<Generation> {
    opts.validate().map_err(ModelError::Input)?;
    if prompt.is_empty() {
        return Err(ModelError::Input("the prompt has no tokens".into()));
    }
    let limit = model.config().max_position_embeddings;
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut cache = model.new_cache();
    let mut seen: Vec<u32> = prompt.to_vec();
    let mut out = Generation { tokens: Vec::new(), probs: Vec::new(), eos_prob: None, stop: StopReason::MaxTokens };
    let mut logits = model.forward_cached(prompt, &mut cache)?;
    while out.tokens.len() < opts.max_tokens && cache.len() < limit {
        let prob = softmax(&logits, 1.0);
        if opts.repetition_penalty != 1.0 {
            seen.sort_unstable();
            seen.dedup();
            for &t in &seen {
                let l = &mut logits[t as usize];
                *l = if *l > 0.0 { *l / opts.repetition_penalty as f32 } else { *l * opts.repetition_penalty as f32 };
            }
        }
        let next = pick(&logits, opts, &mut rng);
        if eos.contains(&next) {
            out.stop = StopReason::Eos;
            out.eos_prob = Some(prob[next as usize] as f32);
            break;
        }
        out.tokens.push(next);
        out.probs.push(prob[next as usize] as f32);
        seen.push(next);
        if stop(&out.tokens) {
            out.stop = StopReason::Stop;
            break;
        }
        if out.tokens.len() == opts.max_tokens {
            break;
        }
        logits = model.forward_cached(&[next], &mut cache)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TinyOptions, config::LlamaConfig, tiny::random_weights};
    use candle_core::{Device, Tensor};

    fn tiny() -> Llama {
        let cfg: LlamaConfig = TinyOptions { seed: 5, ..Default::default() }.config().unwrap();
        let w = random_weights(&cfg, 5).unwrap();
        Llama::new(cfg, &w).unwrap()
    }

    #[test]
    fn kv_cache_greedy_equals_full_recompute() {
        let m = tiny();
        let prompt = [1u32, 40, 300, 77, 12];
        let opts = SamplingOptions { max_tokens: 12, ..Default::default() };
        let g = generate(&m, &prompt, &[], &opts, |_| false).unwrap();
        assert_eq!(g.tokens.len(), 12);
        let mut ids = prompt.to_vec();
        for (step, &tok) in g.tokens.iter().enumerate() {
            let input = Tensor::new(ids.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
            let logits = m.forward(&input, crate::ForwardMode::Eval).unwrap();
            let last: Vec<f32> = logits.narrow(1, ids.len() - 1, 1).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(argmax(&last), tok, "step {step}");
            let p = softmax(&last, 1.0)[tok as usize] as f32;
            assert!((p - g.probs[step]).abs() < 1e-4, "step {step}: {p} vs {}", g.probs[step]);
            ids.push(tok);
        }
    }

    #[test]
    fn cached_logits_match_recompute_for_a_multi_token_chunk() {
        let m = tiny();
        let mut cache = m.new_cache();
        m.forward_cached(&[1, 2, 3], &mut cache).unwrap();
        let chunked = m.forward_cached(&[4, 5, 6], &mut cache).unwrap();
        let full = m.last_logits(&[1, 2, 3, 4, 5, 6]).unwrap();
        let d = chunked.iter().zip(&full).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(d < 1e-4, "{d}");
    }

    #[test]
    fn sampling_is_deterministic_per_seed_and_stops() {
        let m = tiny();
        let opts =
            SamplingOptions { max_tokens: 10, temperature: 1.0, top_k: Some(50), top_p: Some(0.9), repetition_penalty: 1.2, seed: 7 };
        let a = generate(&m, &[1, 9], &[], &opts, |_| false).unwrap();
        let b = generate(&m, &[1, 9], &[], &opts, |_| false).unwrap();
        assert_eq!(a.tokens, b.tokens);
        let c = generate(&m, &[1, 9], &[], &SamplingOptions { seed: 8, ..opts.clone() }, |_| false).unwrap();
        assert_ne!(a.tokens, c.tokens);
        let conf = a.confidence().unwrap();
        assert!(conf > 0.0 && conf <= 1.0);
        let s = generate(&m, &[1, 9], &[], &opts, |t| t.len() == 3).unwrap();
        assert_eq!((s.tokens.len(), s.stop), (3, StopReason::Stop));
        let first = a.tokens[0];
        let e = generate(&m, &[1, 9], &[first], &opts, |_| false).unwrap();
        assert_eq!((e.tokens.len(), e.stop), (0, StopReason::Eos));
        assert!(e.confidence().unwrap() > 0.0);
    }
}
