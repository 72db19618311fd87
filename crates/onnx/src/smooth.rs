//! SmoothQuant for the int8 scheme: per input channel `j` of a projection, `s_j =
//! max|X_j|^α / max|W_:,j|^(1-α)`; the projection computes `(X / s) · (W · s)ᵀ`, the same product,
//! with the activations' outlier channels tamed so one scale per token (row) fits them, and the
//! difficulty moved into the weights, which get one scale per output channel.
//!
//! `1/s` is folded, exactly in f32, into whatever produces `X`, so the graph gets no extra op:
//! - q/k/v read `input_layernorm`: `1/s` into that norm's weight (one `s` for all three);
//! - gate/up read `post_attention_layernorm`: `1/s` into it (one `s`, `max|W|` over both);
//! - `o_proj` reads `softmax(QKᵀ)·V` per query head; attention is linear in `V`, so `1/s` goes
//!   into `v_proj`'s output rows, with `s` tied over the query heads sharing a kv head (GQA);
//! - `down_proj` reads `silu(gate) · up`: `1/s` into `up_proj`'s output rows.
//!
//! `max|X_j|` comes from running the f32 model (candle, `ForwardMode::Eval`) over calibration
//! text with every projection wrapped by a recorder ([`calibrate`]). The head is not smoothed:
//! the int8 scheme keeps it in 8-bit blocks (`scheme.rs`).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Tensor};
use serde::Serialize;
use tinyforge_model::llama::{ForwardMode, Llama, Projection};
use tinyforge_model::{LlamaConfig, ModelError, Weights};

use crate::error::OnnxError;
use crate::scheme::Scheme;

/// Tokens per calibration forward (windows do not overlap).
pub const WINDOW: usize = 256;
/// The largest multiplier either way: a channel that never fires must not blow its weight up.
const S_CLAMP: f32 = 1e4;
/// Floor under both maxima (a dead channel or an all-zero weight column).
const FLOOR: f32 = 1e-5;

/// Per projection (`model.layers.3.self_attn.q_proj`), `max|X_j|` over the calibration tokens.
#[derive(Clone, Debug, Default)]
pub struct Calibration {
    pub tokens: usize,
    pub ranges: HashMap<String, Vec<f32>>,
}

/// What smoothing did, for `tinyforge.json`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SmoothReport {
    pub method: String,
    pub alpha: f32,
    pub calibration_tokens: usize,
    pub calibration_text: String,
    /// Where each `1/s` went.
    pub folds: Vec<String>,
}

/// Records `max|x_j|` of every input it sees, then runs the wrapped projection.
#[derive(Debug)]
struct Recorder {
    inner: Arc<dyn Projection>,
    max: Mutex<Vec<f32>>,
}

impl Projection for Recorder {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let inp = x.dim(candle_core::D::Minus1)?;
        let rows = x.flatten_to(x.rank() - 2)?.abs()?.max(0)?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        debug_assert_eq!(rows.len(), inp);
        let mut m = self.max.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if m.is_empty() {
            m.resize(inp, 0.0);
        }
        for (a, b) in m.iter_mut().zip(rows) {
            *a = a.max(b);
        }
        drop(m);
        self.inner.forward(x)
    }
    fn base_weight(&self) -> &Tensor {
        self.inner.base_weight()
    }
}

/// Runs the f32 model over `ids` in windows of [`WINDOW`] and records every projection's input
/// range.
pub fn calibrate(cfg: &LlamaConfig, weights: &Weights, ids: &[u32]) -> Result<Calibration, OnnxError> {
    let mut model = Llama::new(cfg.clone(), weights)?;
    let mut recorders: Vec<(String, Arc<Recorder>)> = Vec::new();
    model.map_projections(|name, inner| {
        let r = Arc::new(Recorder { inner, max: Mutex::new(Vec::new()) });
        recorders.push((name.to_string(), r.clone()));
        Ok(r)
    })?;
    let mut tokens = 0;
    for window in ids.chunks(WINDOW) {
        let input = Tensor::new(window, &Device::Cpu).and_then(|t| t.unsqueeze(0)).map_err(ModelError::from)?;
        model.forward_hidden(&input, ForwardMode::Eval)?;
        tokens += window.len();
    }
    drop(model);
    let ranges = recorders
        .into_iter()
        .map(|(name, r)| (name, std::mem::take(&mut *r.max.lock().unwrap_or_else(std::sync::PoisonError::into_inner))))
        .collect();
    Ok(Calibration { tokens, ranges })
}

/// `s_j` for input channel `j` of the weights `ws` (each `[out, inp]` row-major) given `max|X_j|`.
fn scales(ax: &[f32], ws: &[&[f32]], inp: usize, alpha: f32) -> Vec<f32> {
    let mut aw = vec![0f32; inp];
    for w in ws {
        for row in w.chunks_exact(inp) {
            for (a, v) in aw.iter_mut().zip(row) {
                *a = a.max(v.abs());
            }
        }
    }
    ax.iter().zip(&aw).map(|(&x, &w)| factor(x, w, alpha)).collect()
}

fn factor(ax: f32, aw: f32, alpha: f32) -> f32 {
    (ax.max(FLOOR).powf(alpha) / aw.max(FLOOR).powf(1.0 - alpha)).clamp(1.0 / S_CLAMP, S_CLAMP)
}

fn scale_cols(w: &mut [f32], inp: usize, s: &[f32]) {
    for row in w.chunks_exact_mut(inp) {
        for (v, s) in row.iter_mut().zip(s) {
            *v *= s;
        }
    }
}

fn divide_rows(w: &mut [f32], inp: usize, s: &[f32]) {
    for (row, s) in w.chunks_exact_mut(inp).zip(s) {
        for v in row {
            *v /= s;
        }
    }
}

/// The model's weights with the decoder projections smoothed (see the module doc); tensors not
/// touched are shared with `weights`. Only the projections `scheme` stores as per-token int8
/// are smoothed (`Scheme::smooths`): a weight-only format needs no smoothing.
pub fn smooth(cfg: &LlamaConfig, weights: &Weights, cal: &Calibration, alpha: f32, scheme: &Scheme) -> Result<Weights, OnnxError> {
    let (h, inter) = (cfg.hidden_size, cfg.intermediate_size);
    let (nh, nkv, hd) = (cfg.num_attention_heads, cfg.num_kv_heads(), cfg.head_dim());
    let mut out = weights.clone();
    let get = |name: &str| -> Result<Vec<f32>, OnnxError> {
        let t =
            weights.get(name).ok_or_else(|| ModelError::WeightsMissing { name: name.into(), reason: "not in the checkpoint".into() })?;
        Ok(t.to_dtype(DType::F32).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1::<f32>()).map_err(ModelError::from)?)
    };
    let range = |name: &str, len: usize| -> Result<&Vec<f32>, OnnxError> {
        match cal.ranges.get(name) {
            Some(r) if r.len() == len => Ok(r),
            _ => Err(ModelError::Input(format!("calibration has no input range of width {len} for {name}")).into()),
        }
    };
    let put = |out: &mut Weights, name: String, v: Vec<f32>, dims: &[usize]| -> Result<(), OnnxError> {
        out.insert(name, Tensor::from_vec(v, dims, &Device::Cpu).map_err(ModelError::from)?);
        Ok(())
    };
    for i in 0..cfg.num_hidden_layers {
        if !scheme.smooths(i, cfg.num_hidden_layers, false) {
            continue;
        }
        let smooth_down = scheme.smooths(i, cfg.num_hidden_layers, true);
        let p = format!("model.layers.{i}");
        let (qn, kn, vn, on) = (
            format!("{p}.self_attn.q_proj"),
            format!("{p}.self_attn.k_proj"),
            format!("{p}.self_attn.v_proj"),
            format!("{p}.self_attn.o_proj"),
        );
        let (gn, un, dn) = (format!("{p}.mlp.gate_proj"), format!("{p}.mlp.up_proj"), format!("{p}.mlp.down_proj"));
        let (mut q, mut k, mut v, mut o) =
            (get(&format!("{qn}.weight"))?, get(&format!("{kn}.weight"))?, get(&format!("{vn}.weight"))?, get(&format!("{on}.weight"))?);
        let (mut gate, mut up, mut down) = (get(&format!("{gn}.weight"))?, get(&format!("{un}.weight"))?, get(&format!("{dn}.weight"))?);
        let (mut ln1, mut ln2) = (get(&format!("{p}.input_layernorm.weight"))?, get(&format!("{p}.post_attention_layernorm.weight"))?);

        // q/k/v: 1/s into input_layernorm.
        let s = scales(range(&qn, h)?, &[&q, &k, &v], h, alpha);
        for w in [&mut q, &mut k, &mut v] {
            scale_cols(w, h, &s);
        }
        ln1.iter_mut().zip(&s).for_each(|(w, s)| *w /= s);

        // o_proj: s tied over the query heads of each kv group, 1/s into v_proj's output rows.
        let ax = range(&on, nh * hd)?;
        let rep = nh / nkv;
        let mut sg = vec![0f32; nkv * hd];
        for g in 0..nkv {
            for d in 0..hd {
                let cols = (0..rep).map(|r| (g * rep + r) * hd + d);
                let x = cols.clone().map(|c| ax[c]).fold(0f32, f32::max);
                let w = cols.map(|c| o.chunks_exact(nh * hd).map(|row| row[c].abs()).fold(0f32, f32::max)).fold(0f32, f32::max);
                sg[g * hd + d] = factor(x, w, alpha);
            }
        }
        let so: Vec<f32> = (0..nh * hd).map(|c| sg[(c / hd / rep) * hd + c % hd]).collect();
        scale_cols(&mut o, nh * hd, &so);
        divide_rows(&mut v, h, &sg);

        // gate/up: 1/s into post_attention_layernorm.
        let s = scales(range(&gn, h)?, &[&gate, &up], h, alpha);
        scale_cols(&mut gate, h, &s);
        scale_cols(&mut up, h, &s);
        ln2.iter_mut().zip(&s).for_each(|(w, s)| *w /= s);

        // down: 1/s into up_proj's output rows.
        if smooth_down {
            let s = scales(range(&dn, inter)?, &[&down], inter, alpha);
            scale_cols(&mut down, inter, &s);
            divide_rows(&mut up, h, &s);
        }

        for (name, w, dims) in [
            (qn, q, [nh * hd, h]),
            (kn, k, [nkv * hd, h]),
            (vn, v, [nkv * hd, h]),
            (on, o, [h, nh * hd]),
            (gn, gate, [inter, h]),
            (un, up, [inter, h]),
            (dn, down, [h, inter]),
        ] {
            put(&mut out, format!("{name}.weight"), w, &dims)?;
        }
        put(&mut out, format!("{p}.input_layernorm.weight"), ln1, &[h])?;
        put(&mut out, format!("{p}.post_attention_layernorm.weight"), ln2, &[h])?;
    }
    Ok(out)
}

/// The report's description of [`smooth`] at `alpha` over `cal`.
#[must_use]
pub fn report(alpha: f32, cal: &Calibration, text: &str) -> SmoothReport {
    SmoothReport {
        method: "SmoothQuant: per input channel s = max|X|^alpha / max|W|^(1-alpha); X/s folded into the op producing X, W*s quantized"
            .into(),
        alpha,
        calibration_tokens: cal.tokens,
        calibration_text: text.into(),
        folds: vec![
            "q/k/v_proj: 1/s into input_layernorm".into(),
            "o_proj: 1/s into v_proj's output rows, s tied over the query heads of each kv head".into(),
            "gate/up_proj: 1/s into post_attention_layernorm".into(),
            "down_proj: 1/s into up_proj's output rows".into(),
            "head (tied embedding) and any layer kept in 8-bit blocks: not smoothed".into(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tinyforge_model::TinyOptions;
    use tinyforge_model::tiny::random_weights;

    /// The folds alone (no quantization) leave the f32 model's logits where they were.
    #[test]
    fn smoothing_folds_leave_f32_logits_unchanged() {
        let cfg = TinyOptions::default().config().unwrap();
        let mut w = random_weights(&cfg, 7).unwrap();
        // One outlier channel, as real models have: what smoothing is for.
        let ln = "model.layers.1.input_layernorm.weight";
        let mut v = w[ln].to_vec1::<f32>().unwrap();
        v[5] *= 40.0;
        w.insert(ln.into(), Tensor::new(v, &Device::Cpu).unwrap());
        let ids: Vec<u32> = (0..300).map(|i| (i * 37 + 11) % cfg.vocab_size as u32).collect();
        let cal = calibrate(&cfg, &w, &ids).unwrap();
        assert_eq!(cal.tokens, 300);
        assert_eq!(cal.ranges.len(), 7 * cfg.num_hidden_layers);
        let scheme = crate::Quantization::Int8.scheme();
        let smoothed = smooth(&cfg, &w, &cal, 0.5, &scheme).unwrap();
        // The smoothing changed the weights a lot...
        let q = |w: &Weights| w["model.layers.0.self_attn.q_proj.weight"].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(q(&w).iter().zip(q(&smoothed)).any(|(a, b)| (a - b).abs() > 1e-3 * a.abs().max(1e-3)));
        // ...and not the function.
        let logits = |w: &Weights| Llama::new(cfg.clone(), w).unwrap().last_logits(&ids[..40]).unwrap();
        let (a, b) = (logits(&w), logits(&smoothed));
        let range = a.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(diff <= 1e-4 * range, "max |logit diff| {diff} of {range}");
    }
}
