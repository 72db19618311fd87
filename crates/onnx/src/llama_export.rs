//! Llama decoder → `model.onnx` with a KV cache, in the Optimum / transformers.js I/O names
//! (crate README, "I/O contract"). Two attention graphs: the default fused one
//! (`fused_ops.rs`: `GroupQueryAttention`, `SkipSimplifiedLayerNormalization`; right padding,
//! KV cache usable as one shared buffer) and the plain opset-21 one (`plain_ops.rs`: any
//! padding). Weights per `Scheme` (`scheme.rs`): f32 `MatMul`, `MatMulNBits` blocks
//! (`blockwise.rs`) or the first dynamic INT8 pattern (`quantize.rs`). The token embedding is a
//! `Gather` on the head's table when the head is tied, so the largest matrix is stored once.
use std::path::{Path, PathBuf};

use candle_core::DType;
use tinyforge_model::{LlamaConfig, Weights, load_checkpoint};

use crate::Dim;
use crate::error::OnnxError;
use crate::graph::Graph;
use crate::head::Head;
use crate::proto::DataType;
use crate::quantize::WeightRef;
use crate::scheme::{Format, QuantReport, Quantization, ReportBuilder, Scheme};
use crate::{fused_ops, plain_ops};

#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    pub quantize: Option<Quantization>,
    /// Calibration text for a scheme that smooths (`Scheme::smooth_alpha`, int8). Without it
    /// such a scheme quantizes unsmoothed weights and the report's `smoothing` stays empty.
    pub calibration: Option<CalibrationText>,
}

/// Token ids of the calibration text and what it was (for the report).
#[derive(Clone, Debug)]
pub struct CalibrationText {
    pub name: String,
    pub ids: Vec<u32>,
}

/// The text the int8 export calibrates on: `data/general-replay.txt` (prose on everyday subjects
/// written for this project; not the held-out text the quality report scores).
pub const CALIBRATION_TEXT: &str = include_str!("../../../data/general-replay.txt");
/// How [`CALIBRATION_TEXT`] is named in `tinyforge.json`.
pub const CALIBRATION_TEXT_NAME: &str = "data/general-replay.txt";

/// What `export_llama` wrote.
#[derive(Clone, Debug)]
pub struct ExportReport {
    pub path: PathBuf,
    pub bytes: u64,
    pub layers: usize,
    pub quantization: Option<Quantization>,
    /// Per tensor group: format, bytes, rounding error and why (for `tinyforge.json`).
    pub quant: QuantReport,
}

/// Loads an HF folder or GGUF file (f32, HF naming) and exports it.
pub fn export_llama_path(model: &Path, out: &Path, opts: &ExportOptions) -> Result<ExportReport, OnnxError> {
    let ckpt = load_checkpoint(model)?;
    export_llama(&ckpt.config, &ckpt.weights, out, opts)
}

/// Writes `out` (e.g. `model.onnx`) for the model `cfg` + HF-named `weights` (a LoRA-merged
/// model is the base weights after `tinyforge_train::merge_into`).
pub fn export_llama(cfg: &LlamaConfig, weights: &Weights, out: &Path, opts: &ExportOptions) -> Result<ExportReport, OnnxError> {
    let scheme = opts.quantize.map_or_else(Scheme::f32, Quantization::scheme);
    let mut report = export_llama_with(cfg, weights, out, &scheme, opts.calibration.as_ref())?;
    report.quantization = opts.quantize;
    Ok(report)
}

/// [`export_llama_scheme`] with calibration text for a scheme that smooths (`smooth.rs`).
pub fn export_llama_with(
    cfg: &LlamaConfig,
    weights: &Weights,
    out: &Path,
    scheme: &Scheme,
    calibration: Option<&CalibrationText>,
) -> Result<ExportReport, OnnxError> {
    let smoothed;
    let (weights, smoothing) = match (scheme.smooth_alpha, calibration) {
        (Some(alpha), Some(text)) => {
            cfg.validate().map_err(|reason| tinyforge_model::ModelError::Config { path: "config".into(), reason })?;
            let cal = crate::smooth::calibrate(cfg, weights, &text.ids)?;
            smoothed = crate::smooth::smooth(cfg, weights, &cal, alpha, scheme)?;
            (&smoothed, Some(crate::smooth::report(alpha, &cal, &text.name)))
        }
        _ => (weights, None),
    };
    let mut report = export_llama_scheme(cfg, weights, out, scheme)?;
    report.quant.smoothing = smoothing;
    Ok(report)
}

/// [`export_llama`] with the formats spelled out per tensor group (for measuring alternatives).
pub fn export_llama_scheme(cfg: &LlamaConfig, weights: &Weights, out: &Path, scheme: &Scheme) -> Result<ExportReport, OnnxError> {
    cfg.validate().map_err(|reason| tinyforge_model::ModelError::Config { path: "config".into(), reason })?;
    let (g, quant) = build(cfg, weights, scheme)?;
    g.b.save(out)?;
    let size = |p: &Path| std::fs::metadata(p).map_err(|source| OnnxError::Read { path: p.to_path_buf(), source }).map(|m| m.len());
    // The weights live in `<out>_data` (external data): count both files.
    let data = crate::external_data::data_path(out);
    let bytes = size(out)? + if data.exists() { size(&data)? } else { 0 };
    Ok(ExportReport {
        path: out.to_path_buf(),
        bytes,
        layers: cfg.num_hidden_layers,
        quantization: Quantization::parse(scheme.name),
        quant,
    })
}

/// `[rows, cols]` f32 values of an HF tensor, with its shape checked.
fn tensor(weights: &Weights, name: &str, shape: &[usize]) -> Result<Vec<f32>, OnnxError> {
    let missing = |reason: String| tinyforge_model::ModelError::WeightsMissing { name: name.to_string(), reason };
    let t = weights.get(name).ok_or_else(|| missing("not in the checkpoint".into()))?;
    if t.dims() != shape {
        return Err(missing(format!("shape {:?}, config implies {shape:?}", t.dims())).into());
    }
    let v = t.to_dtype(DType::F32).and_then(|t| t.flatten_all()).and_then(|t| t.to_vec1::<f32>());
    Ok(v.map_err(tinyforge_model::ModelError::from)?)
}

fn build(cfg: &LlamaConfig, weights: &Weights, scheme: &Scheme) -> Result<(Graph, QuantReport), OnnxError> {
    let (h, v, inter) = (cfg.hidden_size, cfg.vocab_size, cfg.intermediate_size);
    let (nh, nkv, hd) = (cfg.num_attention_heads, cfg.num_kv_heads(), cfg.head_dim());
    let mut g = Graph::new("llama_decoder");
    let mut rep = ReportBuilder::new(*scheme);
    declare_io(&mut g, cfg);
    g.b.metadata("tinyforge.export", "llama-decoder-kv-cache")
        .metadata("tinyforge.quantization", scheme.name)
        .metadata("tinyforge.kv_cache", if scheme.fused { "shared-buffer" } else { "concat" })
        .metadata("tinyforge.config", &serde_json::to_string(cfg).unwrap_or_default());
    let head_name = if cfg.tie_word_embeddings { "model.embed_tokens" } else { "lm_head" };
    let head = head_table(&mut g, &mut rep, weights, head_name, v, h, scheme)?;
    let embed =
        if cfg.tie_word_embeddings { head.clone() } else { head_table(&mut g, &mut rep, weights, "model.embed_tokens", v, h, scheme)? };
    // Weights `names` (HF module paths) stacked along the output dim as one matrix.
    let mut add = |g: &mut Graph, names: &[String], outs: &[usize], inp: usize, format: Format| -> Result<WeightRef, OnnxError> {
        let mut w = Vec::new();
        for (name, &out) in names.iter().zip(outs) {
            w.extend(tensor(weights, &format!("{name}.weight"), &[out, inp])?);
        }
        let label = if names.len() == 1 { names[0].clone() } else { names[0].replace("q_proj", "qkv_proj") };
        let out: usize = outs.iter().sum();
        let (wr, stored) = WeightRef::add(g, &label, &w, out, inp, format);
        rep.add(&label, format, w.len(), stored);
        Ok(wr)
    };
    let one = |name: String| vec![name];

    let mut x = embed.gather_rows(&mut g, "input_ids");
    let eps = cfg.rms_norm_eps;
    let ln1_0 = norm_weight(&mut g, weights, "model.layers.0.input_layernorm.weight", h)?;
    // Fused: the residual add and the next norm are one op, so `xn` is carried to the next layer.
    let mut xn = plain_ops::rms_norm(&mut g, &x, &ln1_0, eps);
    let (plain_shared, gqa) = if scheme.fused {
        let (cos, sin) = plain_ops::rope_tables(&mut g, cfg);
        (None, Some(fused_ops::gqa_shared(&mut g, cos, sin)))
    } else {
        let mask = plain_ops::attention_mask(&mut g);
        let (cos, sin) = plain_ops::rope(&mut g, cfg);
        (Some(plain_ops::Shared { mask, cos, sin }), None)
    };
    for i in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{i}");
        let (linear, down_format) = scheme.layer_formats(i, cfg.num_hidden_layers);
        let attn = if let Some(sh) = &gqa {
            let names = ["q_proj", "k_proj", "v_proj"].map(|n| format!("{p}.self_attn.{n}"));
            let qkv = add(&mut g, &names, &[nh * hd, nkv * hd, nkv * hd], h, linear)?;
            let o = add(&mut g, &one(format!("{p}.self_attn.o_proj")), &[h], nh * hd, linear)?;
            fused_ops::gqa_attention(&mut g, cfg, i, &xn, &qkv, &o, sh)
        } else {
            let mut proj = |name: &str, out: usize, inp: usize| add(&mut g, &one(format!("{p}.self_attn.{name}")), &[out], inp, linear);
            let (q, k, vv, o) =
                (proj("q_proj", nh * hd, h)?, proj("k_proj", nkv * hd, h)?, proj("v_proj", nkv * hd, h)?, proj("o_proj", h, nh * hd)?);
            let sh = plain_shared.as_ref().expect("plain attention tables");
            plain_ops::attention(&mut g, cfg, i, &xn, [&q, &k, &vv, &o], sh)
        };
        let ln2 = norm_weight(&mut g, weights, &format!("{p}.post_attention_layernorm.weight"), h)?;
        let xn2 = if scheme.fused {
            let (normed, sum) = fused_ops::skip_norm(&mut g, &attn, &x, &ln2, eps);
            x = sum;
            normed
        } else {
            x = g.op("Add", &[&x, &attn], vec![]);
            plain_ops::rms_norm(&mut g, &x, &ln2, eps)
        };
        let gate = add(&mut g, &one(format!("{p}.mlp.gate_proj")), &[inter], h, linear)?.matmul(&mut g, &xn2, None);
        let up = add(&mut g, &one(format!("{p}.mlp.up_proj")), &[inter], h, linear)?.matmul(&mut g, &xn2, None);
        // SiLU as x·σ(x); ORT fuses it.
        let sig = g.op("Sigmoid", &[&gate], vec![]);
        let silu = g.op("Mul", &[&gate, &sig], vec![]);
        let act = g.op("Mul", &[&silu, &up], vec![]);
        let down = add(&mut g, &one(format!("{p}.mlp.down_proj")), &[h], inter, down_format)?.matmul(&mut g, &act, None);
        let next = if i + 1 < cfg.num_hidden_layers {
            format!("model.layers.{}.input_layernorm.weight", i + 1)
        } else {
            "model.norm.weight".into()
        };
        let next = norm_weight(&mut g, weights, &next, h)?;
        if scheme.fused {
            (xn, x) = fused_ops::skip_norm(&mut g, &down, &x, &next, eps);
        } else {
            x = g.op("Add", &[&x, &down], vec![]);
            xn = plain_ops::rms_norm(&mut g, &x, &next, eps);
        }
    }
    head.matmul(&mut g, &xn, Some("logits"));
    Ok((g, rep.finish()))
}

/// The `[v, h]` table `name` in `scheme.head`, or split at `scheme.head_tail` (`head.rs`).
fn head_table(
    g: &mut Graph,
    rep: &mut ReportBuilder,
    weights: &Weights,
    name: &str,
    v: usize,
    h: usize,
    scheme: &Scheme,
) -> Result<Head, OnnxError> {
    let w = tensor(weights, &format!("{name}.weight"), &[v, h])?;
    let mut part = |g: &mut Graph, label: &str, w: &[f32], rows: usize, format: Format| {
        let (wr, stored) = WeightRef::add(g, label, w, rows, h, format);
        rep.add(label, format, w.len(), stored);
        wr
    };
    let from = scheme.head_tail.map_or(0, |t| t.first_row(v));
    Ok(match scheme.head_tail {
        Some(tail) if from > 0 && from < v => {
            let (first, rest) = w.split_at(from * h);
            let first = part(g, &format!("{name}.frequent_rows"), first, from, scheme.head);
            let rest = part(g, &format!("{name}.tail_rows"), rest, v - from, tail.format);
            Head::Split { rows: from, first, rest }
        }
        _ => Head::One(part(g, name, &w, v, scheme.head)),
    })
}

fn declare_io(g: &mut Graph, cfg: &LlamaConfig) {
    let (b, s, p) = (Dim::sym("batch_size"), Dim::sym("sequence_length"), Dim::sym("past_sequence_length"));
    let t = Dim::sym("past_sequence_length + sequence_length");
    let (kv, hd) = (Dim::Fixed(cfg.num_kv_heads() as i64), Dim::Fixed(cfg.head_dim() as i64));
    g.b.input("input_ids", DataType::Int64, &[b.clone(), s.clone()])
        .input("attention_mask", DataType::Int64, &[b.clone(), t.clone()])
        .input("position_ids", DataType::Int64, &[b.clone(), s.clone()]);
    for i in 0..cfg.num_hidden_layers {
        for kind in ["key", "value"] {
            g.b.input(&format!("past_key_values.{i}.{kind}"), DataType::Float, &[b.clone(), kv.clone(), p.clone(), hd.clone()]);
        }
    }
    g.b.output("logits", DataType::Float, &[b.clone(), s, Dim::Fixed(cfg.vocab_size as i64)]);
    for i in 0..cfg.num_hidden_layers {
        for kind in ["key", "value"] {
            g.b.output(&format!("present.{i}.{kind}"), DataType::Float, &[b.clone(), kv.clone(), t.clone(), hd.clone()]);
        }
    }
}

fn norm_weight(g: &mut Graph, weights: &Weights, name: &str, h: usize) -> Result<String, OnnxError> {
    g.b.initializer_f32(name, &[h as i64], &tensor(weights, name, &[h])?);
    Ok(name.to_string())
}
