//! Choosing the next token from a row of logits, in llama.cpp's and HF's order: penalties on the
//! raw logits, then greedy (temperature 0) or temperature → softmax → top-k → top-p → min-p and
//! one draw from a seeded generator (one `f64` per sampled token, so the same seed and options
//! give the same tokens on any decoder that gives the same logits).
//!
//! The log-probability reported for a chosen token is under the model's own distribution
//! (log-softmax of the raw logits: temperature 1, no penalty, no truncation), so confidence does
//! not move with the sampling settings.
use std::collections::HashMap;

use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::error::{GenerateError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 = greedy (argmax of the penalised logits).
    pub temperature: f64,
    /// Keep only the k most likely tokens (`None` or 0 = all).
    pub top_k: Option<usize>,
    /// Keep the smallest set whose probability reaches p (`None` or 1 = all).
    pub top_p: Option<f64>,
    /// Drop tokens less likely than `min_p` × the most likely one (`None` or 0 = off).
    pub min_p: Option<f64>,
    /// CTRL-style (Keskar et al. 2019), as HF applies it: logits of tokens in the prompt or the
    /// output are divided by it when positive, multiplied when negative. 1 = off.
    pub repetition_penalty: f64,
    /// OpenAI's: `count × frequency_penalty` is subtracted from the logit of each token already
    /// generated (`count` times). 0 = off; in [-2, 2].
    pub frequency_penalty: f64,
    /// OpenAI's: subtracted once from the logit of every token already generated. 0 = off.
    pub presence_penalty: f64,
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_k: None,
            top_p: None,
            min_p: None,
            repetition_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            seed: 0,
        }
    }
}

impl SamplingParams {
    /// Checks every range; the error names the option (camelCase, as JS and HTTP spell it).
    pub fn validate(&self) -> Result<()> {
        let bad = |field, reason: String| Err(GenerateError::invalid(field, reason));
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return bad("temperature", format!("must be >= 0, got {}", self.temperature));
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return bad("topP", format!("must be in (0, 1], got {p}"));
        }
        if let Some(p) = self.min_p
            && !(0.0..=1.0).contains(&p)
        {
            return bad("minP", format!("must be in [0, 1], got {p}"));
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return bad("repetitionPenalty", format!("must be > 0, got {}", self.repetition_penalty));
        }
        for (field, v) in [("frequencyPenalty", self.frequency_penalty), ("presencePenalty", self.presence_penalty)] {
            if !(-2.0..=2.0).contains(&v) {
                return bad(field, format!("must be in [-2, 2], got {v}"));
            }
        }
        Ok(())
    }
}

/// First index of the maximum (ties resolve like `argmax` in PyTorch/NumPy).
#[must_use]
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    u32::try_from(best).expect("vocabulary fits u32")
}

/// `log Σ exp(l)` of the raw logits, for log-softmax. It runs on every token of every
/// request, on the scheduler thread between forwards: a libm `exp` per logit cost ~0.3 ms a row
/// at SmolLM2's 49,152 (a few % of a batch-1 decode step, and 32 times that at 32 rows), so
/// the exponentials use `exp_le0`, which vectorises, summed in f32 lanes per block of 256 and
/// in f64 across blocks.
fn log_sum_exp(logits: &[f32]) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return f64::from(max);
    }
    let sum: f64 = logits.chunks(256).map(|c| f64::from(c.iter().map(|&l| exp_le0(l - max)).sum::<f32>())).sum();
    f64::from(max) + sum.ln()
}

/// `e^x` for `x <= 0` (0 below -87), within ~2e-7 relative, branch-free so that a loop over it
/// vectorises: `x = k ln2 + r` with `|r| <= ln2/2` (ln2 split in two for an exact `k ln2`),
/// `e^r` by its degree-6 Taylor polynomial (remainder < 3e-7 there), `2^k` from the exponent bits.
#[inline]
fn exp_le0(x: f32) -> f32 {
    // 1.5 * 2^23: adding and subtracting it rounds to the nearest integer in f32 arithmetic.
    const ROUND: f32 = 12_582_912.0;
    let x = x.max(-87.0);
    let k = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    // ln2 = 355/512 (exact in a few bits, so k * 355/512 is exact) - 2.1219444e-4.
    let r = (x - k * (355.0 / 512.0)) + k * 2.121_944_4e-4;
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // k is in [-126, 0]: a normal exponent
    let scale = f32::from_bits(((k as i32 + 127) as u32) << 23);
    scale * p
}

/// A token and its log-probability under the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenLogprob {
    pub token: u32,
    pub logprob: f32,
}

/// The per-sequence sampler: options, generator, and the counts the penalties need.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: StdRng,
    /// Tokens of the prompt and the output (repetition penalty).
    seen: Vec<bool>,
    seen_list: Vec<u32>,
    /// Generated-token counts (frequency and presence penalties).
    counts: HashMap<u32, u32>,
}

/// What `Sampler::sample` chose.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub token: u32,
    pub logprob: f32,
    /// The `n` most likely tokens under the model, most likely first (`n` = `top_logprobs`).
    pub top: Vec<TokenLogprob>,
}

impl Sampler {
    /// `prompt` feeds the repetition penalty.
    pub fn new(params: SamplingParams, prompt: &[u32]) -> Result<Self> {
        params.validate()?;
        let mut s =
            Self { rng: StdRng::seed_from_u64(params.seed), params, seen: Vec::new(), seen_list: Vec::new(), counts: HashMap::new() };
        for &t in prompt {
            s.mark_seen(t);
        }
        Ok(s)
    }

    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    fn mark_seen(&mut self, t: u32) {
        let i = t as usize;
        if i >= self.seen.len() {
            self.seen.resize(i + 1, false);
        }
        if !self.seen[i] {
            self.seen[i] = true;
            self.seen_list.push(t);
        }
    }

    /// Records a generated token for the penalties.
    pub fn observe(&mut self, token: u32) {
        self.mark_seen(token);
        *self.counts.entry(token).or_default() += 1;
    }

    /// Applies the three penalties in place.
    fn penalise(&self, logits: &mut [f32]) {
        let p = &self.params;
        #[allow(clippy::float_cmp)] // exactly 1 is the documented "off"
        if p.repetition_penalty != 1.0 {
            #[allow(clippy::cast_possible_truncation)] // a penalty near 1 fits f32
            let r = p.repetition_penalty as f32;
            for &t in &self.seen_list {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l = if *l > 0.0 { *l / r } else { *l * r };
                }
            }
        }
        if p.frequency_penalty != 0.0 || p.presence_penalty != 0.0 {
            for (&t, &n) in &self.counts {
                if let Some(l) = logits.get_mut(t as usize) {
                    #[allow(clippy::cast_possible_truncation)]
                    let sub = (f64::from(n) * p.frequency_penalty + p.presence_penalty) as f32;
                    *l -= sub;
                }
            }
        }
    }

    /// Chooses the next token from one row of raw logits (not modified), reporting its
    /// log-probability and the `top_logprobs` most likely tokens under the model.
    pub fn sample(&mut self, logits: &[f32], top_logprobs: usize) -> Choice {
        let lse = log_sum_exp(logits);
        #[allow(clippy::cast_possible_truncation)]
        let logprob = |t: u32| (f64::from(logits[t as usize]) - lse) as f32;
        let p = &self.params;
        #[allow(clippy::float_cmp)] // exactly 1 / 0 are the documented "off"
        let penalised = p.repetition_penalty != 1.0 || p.frequency_penalty != 0.0 || p.presence_penalty != 0.0;
        // Copied only when a penalty changes it: a 49k-vocabulary row is 196 KB, copied per
        // token per sequence on the scheduler thread while ORT's threads wait.
        let work = if penalised {
            let mut w = logits.to_vec();
            self.penalise(&mut w);
            std::borrow::Cow::Owned(w)
        } else {
            std::borrow::Cow::Borrowed(logits)
        };
        let token = if self.params.temperature == 0.0 { argmax(&work) } else { self.draw(&work) };
        let top = top_n(logits, top_logprobs).into_iter().map(|t| TokenLogprob { token: t, logprob: logprob(t) }).collect();
        Choice { token, logprob: logprob(token), top }
    }

    fn draw(&mut self, logits: &[f32]) -> u32 {
        let p = &self.params;
        let max = f64::from(logits.iter().copied().fold(f32::NEG_INFINITY, f32::max));
        let probs: Vec<f64> = logits.iter().map(|&l| ((f64::from(l) - max) / p.temperature).exp()).collect();
        let sum: f64 = probs.iter().sum();
        // Candidates most likely first; ties by id so the order is total and reproducible.
        let by_prob = |a: &u32, b: &u32| probs[*b as usize].total_cmp(&probs[*a as usize]).then(a.cmp(b));
        let mut order: Vec<u32> = (0..u32::try_from(probs.len()).expect("vocabulary fits u32")).collect();
        match p.top_k.filter(|&k| k > 0 && k < order.len()) {
            // Partial selection: O(V) instead of sorting the whole vocabulary every token.
            Some(k) => {
                order.select_nth_unstable_by(k - 1, by_prob);
                order.truncate(k);
                order.sort_unstable_by(by_prob);
            }
            None => order.sort_unstable_by(by_prob),
        }
        if let Some(top_p) = p.top_p.filter(|&x| x < 1.0) {
            let mut acc = 0.0;
            let keep = order.iter().position(|&i| {
                acc += probs[i as usize] / sum;
                acc >= top_p
            });
            order.truncate(keep.map_or(order.len(), |n| n + 1));
        }
        if let Some(min_p) = p.min_p.filter(|&x| x > 0.0) {
            let floor = probs[order[0] as usize] * min_p;
            order.retain(|&i| probs[i as usize] >= floor);
        }
        let total: f64 = order.iter().map(|&i| probs[i as usize]).sum();
        let mut u = self.rng.random::<f64>() * total;
        for &i in &order {
            u -= probs[i as usize];
            if u <= 0.0 {
                return i;
            }
        }
        *order.last().expect("at least one candidate")
    }
}

/// The `n` largest logits' ids, largest first (ties by id).
fn top_n(logits: &[f32], n: usize) -> Vec<u32> {
    if n == 0 {
        return Vec::new();
    }
    let by = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]).then(a.cmp(b));
    let mut ids: Vec<u32> = (0..u32::try_from(logits.len()).expect("vocabulary fits u32")).collect();
    let n = n.min(ids.len());
    if n < ids.len() {
        ids.select_nth_unstable_by(n - 1, by);
        ids.truncate(n);
    }
    ids.sort_unstable_by(by);
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_and_log_sum_exp_match_libm() {
        for i in 0..=17_000 {
            let x = -(i as f32) * 0.005;
            let (got, want) = (f64::from(exp_le0(x)), f64::from(x).exp());
            assert!((got - want).abs() <= 3e-7 * want + 1e-38, "exp({x}) = {got}, want {want}");
        }
        assert_eq!(exp_le0(-1000.0), exp_le0(-87.0));
        let logits: Vec<f32> = (0..49_152).map(|i| ((i * 7919) % 1000) as f32 * 0.03 - 12.0).collect();
        let max = f64::from(logits.iter().copied().fold(f32::NEG_INFINITY, f32::max));
        let want = max + logits.iter().map(|&l| (f64::from(l) - max).exp()).sum::<f64>().ln();
        assert!((log_sum_exp(&logits) - want).abs() < 1e-5, "{} vs {want}", log_sum_exp(&logits));
        assert_eq!(log_sum_exp(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), f64::NEG_INFINITY);
    }

    fn sampler(p: SamplingParams) -> Sampler {
        Sampler::new(p, &[]).unwrap()
    }

    #[test]
    fn greedy_is_argmax_and_logprob_is_log_softmax() {
        let logits = [0.5f32, 2.0, -1.0, 2.0];
        let c = sampler(SamplingParams::default()).sample(&logits, 2);
        assert_eq!(c.token, 1, "first maximum wins a tie");
        let z: f64 = logits.iter().map(|&l| f64::from(l).exp()).sum();
        assert!((f64::from(c.logprob) - (2.0 - z.ln())).abs() < 1e-6);
        assert_eq!(c.top.iter().map(|t| t.token).collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn same_seed_same_draws_other_seed_differs() {
        let logits: Vec<f32> = (0..50).map(|i| (i % 7) as f32 * 0.3).collect();
        let p = SamplingParams { temperature: 1.0, seed: 9, ..Default::default() };
        let run = |p: &SamplingParams| {
            let mut s = sampler(p.clone());
            (0..30).map(|_| s.sample(&logits, 0).token).collect::<Vec<_>>()
        };
        assert_eq!(run(&p), run(&p));
        assert_ne!(run(&p), run(&SamplingParams { seed: 10, ..p.clone() }));
    }

    #[test]
    fn top_k_top_p_and_min_p_restrict_the_candidates() {
        // Probabilities ∝ e^l: token 0 ≈ 0.64, 1 ≈ 0.24, 2 ≈ 0.09, rest tiny.
        let logits = [3.0f32, 2.0, 1.0, -3.0, -3.0, -3.0];
        let seen = |p: SamplingParams| {
            let mut s = sampler(p);
            let mut hit = [false; 6];
            for _ in 0..400 {
                hit[s.sample(&logits, 0).token as usize] = true;
            }
            hit
        };
        let hot = SamplingParams { temperature: 5.0, seed: 1, ..Default::default() };
        assert_eq!(seen(hot.clone()), [true; 6], "a hot temperature reaches every token");
        assert_eq!(seen(SamplingParams { top_k: Some(2), ..hot.clone() }), [true, true, false, false, false, false]);
        let p = SamplingParams { temperature: 1.0, top_p: Some(0.8), seed: 2, ..Default::default() };
        assert_eq!(seen(p), [true, true, false, false, false, false], "0.64 < 0.8 <= 0.64 + 0.24");
        let m = SamplingParams { temperature: 1.0, min_p: Some(0.3), seed: 3, ..Default::default() };
        assert_eq!(seen(m), [true, true, false, false, false, false], "0.09 < 0.3 × 0.64");
    }

    #[test]
    fn penalties_change_the_greedy_choice() {
        let logits = [2.0f32, 1.9, 0.0];
        let mut rep = Sampler::new(SamplingParams { repetition_penalty: 1.2, ..Default::default() }, &[0]).unwrap();
        assert_eq!(rep.sample(&logits, 0).token, 1, "2.0 / 1.2 < 1.9");
        let mut freq = sampler(SamplingParams { frequency_penalty: 0.06, ..Default::default() });
        assert_eq!(freq.sample(&logits, 0).token, 0);
        freq.observe(0);
        assert_eq!(freq.sample(&logits, 0).token, 0, "2.0 - 0.06 > 1.9");
        freq.observe(0);
        assert_eq!(freq.sample(&logits, 0).token, 1, "2.0 - 0.12 < 1.9");
        let mut pres = sampler(SamplingParams { presence_penalty: 0.2, ..Default::default() });
        pres.observe(0);
        let c = pres.sample(&logits, 0);
        assert_eq!(c.token, 1);
        // The reported log-probability ignores penalties.
        let z: f64 = logits.iter().map(|&l| f64::from(l).exp()).sum();
        assert!((f64::from(c.logprob) - (1.9 - z.ln())).abs() < 1e-6);
    }

    #[test]
    fn bad_options_name_their_field() {
        for (p, field) in [
            (SamplingParams { temperature: -1.0, ..Default::default() }, "temperature"),
            (SamplingParams { top_p: Some(0.0), ..Default::default() }, "topP"),
            (SamplingParams { min_p: Some(1.5), ..Default::default() }, "minP"),
            (SamplingParams { repetition_penalty: 0.0, ..Default::default() }, "repetitionPenalty"),
            (SamplingParams { presence_penalty: 3.0, ..Default::default() }, "presencePenalty"),
        ] {
            let e = p.validate().unwrap_err();
            assert_eq!(e.code(), "INVALID_ARGUMENT");
            assert!(e.to_string().starts_with(field), "{e}");
        }
    }
}
