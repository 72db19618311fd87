//! Llama decoder → `model.onnx` with a KV cache, in the Optimum / transformers.js I/O layout
//! (see the crate README, "Design note: decoder with KV cache"), built from plain opset-21 ops
//! that ONNX Runtime's CPU provider runs (and fuses: RMSNorm, INT8 MatMuls).
//!
//! Inputs: `input_ids`, `attention_mask` `[batch, past + seq]`, `position_ids`,
//! `past_key_values.{i}.key|value` `[batch, kv_heads, past, head_dim]`.
//! Outputs: `logits` `[batch, seq, vocab]`, `present.{i}.key|value` `[batch, kv_heads, past + seq,
//! head_dim]`. Every weight table is stored transposed (`[in, out]`, ONNX MatMul's B); the token
//! embedding is a `Gather` on axis 1 of that same table when the head is tied, so a tied model
//! stores its largest matrix once (f32 or INT8).
use std::path::{Path, PathBuf};

use candle_core::DType;
use tinyforge_model::{LlamaConfig, Weights, llama::rope_inv_freq, load_checkpoint};

use crate::Dim;
use crate::error::OnnxError;
use crate::graph::Graph;
use crate::proto::DataType;
use crate::quantize::WeightRef;
use crate::tensor::Attr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantization {
    /// Dynamic INT8: per-output-channel symmetric int8 weights, activations quantized per
    /// tensor at run time. Norm weights, RoPE tables and the KV cache stay f32.
    Int8,
}

impl Quantization {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Int8 => "int8",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    pub quantize: Option<Quantization>,
}

/// What `export_llama` wrote.
#[derive(Clone, Debug)]
pub struct ExportReport {
    pub path: PathBuf,
    pub bytes: u64,
    pub layers: usize,
    pub quantization: Option<Quantization>,
}

/// Loads an HF folder or GGUF file (f32, HF naming) and exports it.
pub fn export_llama_path(model: &Path, out: &Path, opts: &ExportOptions) -> Result<ExportReport, OnnxError> {
    let ckpt = load_checkpoint(model)?;
    export_llama(&ckpt.config, &ckpt.weights, out, opts)
}

/// Writes `out` (e.g. `model.onnx`) for the model `cfg` + HF-named `weights` (a LoRA-merged
/// model is the base weights after `tinyforge_train::merge_into`).
pub fn export_llama(cfg: &LlamaConfig, weights: &Weights, out: &Path, opts: &ExportOptions) -> Result<ExportReport, OnnxError> {
    cfg.validate().map_err(|reason| tinyforge_model::ModelError::Config { path: "config".into(), reason })?;
    let g = build(cfg, weights, opts)?;
    g.b.save(out)?;
    let bytes = std::fs::metadata(out).map_err(|source| OnnxError::Read { path: out.to_path_buf(), source })?.len();
    Ok(ExportReport { path: out.to_path_buf(), bytes, layers: cfg.num_hidden_layers, quantization: opts.quantize })
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

struct Shared {
    /// `[batch, 1, seq, total]` additive mask (0 or f32::MIN).
    mask: String,
    /// `[batch, 1, seq, head_dim]` RoPE tables for these positions (rotate-half layout).
    cos: String,
    sin: String,
}

fn build(cfg: &LlamaConfig, weights: &Weights, opts: &ExportOptions) -> Result<Graph, OnnxError> {
    let int8 = opts.quantize == Some(Quantization::Int8);
    let (h, v, inter) = (cfg.hidden_size, cfg.vocab_size, cfg.intermediate_size);
    let (nh, nkv, hd) = (cfg.num_attention_heads, cfg.num_kv_heads(), cfg.head_dim());
    let mut g = Graph::new("llama_decoder");
    declare_io(&mut g, cfg);
    g.b.metadata("tinyforge.export", "llama-decoder-kv-cache")
        .metadata("tinyforge.quantization", opts.quantize.map_or("none", Quantization::name))
        .metadata("tinyforge.config", &serde_json::to_string(cfg).unwrap_or_default());

    let head_name = if cfg.tie_word_embeddings { "model.embed_tokens.weight" } else { "lm_head.weight" };
    let head = WeightRef::add(&mut g, head_name.trim_end_matches(".weight"), &tensor(weights, head_name, &[v, h])?, v, h, int8);
    let embed = if cfg.tie_word_embeddings {
        head.clone()
    } else {
        let e = tensor(weights, "model.embed_tokens.weight", &[v, h])?;
        WeightRef::add(&mut g, "model.embed_tokens", &e, v, h, int8)
    };
    let mask = attention_mask(&mut g);
    let (cos, sin) = rope(&mut g, cfg);
    let shared = Shared { mask, cos, sin };

    let mut x = embed.gather_rows(&mut g, "input_ids", 2);
    for i in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{i}");
        let lin = |g: &mut Graph, name: &str, out: usize, inp: usize| -> Result<WeightRef, OnnxError> {
            let w = tensor(weights, &format!("{p}.{name}.weight"), &[out, inp])?;
            Ok(WeightRef::add(g, &format!("{p}.{name}"), &w, out, inp, int8))
        };
        let ln1 = norm_weight(&mut g, weights, &format!("{p}.input_layernorm.weight"), h)?;
        let xn = rms_norm(&mut g, &x, &ln1, cfg.rms_norm_eps);
        let q = lin(&mut g, "self_attn.q_proj", nh * hd, h)?;
        let k = lin(&mut g, "self_attn.k_proj", nkv * hd, h)?;
        let vv = lin(&mut g, "self_attn.v_proj", nkv * hd, h)?;
        let o = lin(&mut g, "self_attn.o_proj", h, nh * hd)?;
        let attn = attention(&mut g, cfg, i, &xn, [&q, &k, &vv, &o], &shared);
        x = g.op("Add", &[&x, &attn], vec![]);

        let ln2 = norm_weight(&mut g, weights, &format!("{p}.post_attention_layernorm.weight"), h)?;
        let xn = rms_norm(&mut g, &x, &ln2, cfg.rms_norm_eps);
        let gate = lin(&mut g, "mlp.gate_proj", inter, h)?.matmul(&mut g, &xn, None);
        let up = lin(&mut g, "mlp.up_proj", inter, h)?.matmul(&mut g, &xn, None);
        // SiLU as x·σ(x); ORT fuses it.
        let sig = g.op("Sigmoid", &[&gate], vec![]);
        let silu = g.op("Mul", &[&gate, &sig], vec![]);
        let act = g.op("Mul", &[&silu, &up], vec![]);
        let down = lin(&mut g, "mlp.down_proj", h, inter)?.matmul(&mut g, &act, None);
        x = g.op("Add", &[&x, &down], vec![]);
    }
    let norm = norm_weight(&mut g, weights, "model.norm.weight", h)?;
    let xn = rms_norm(&mut g, &x, &norm, cfg.rms_norm_eps);
    head.matmul(&mut g, &xn, Some("logits"));
    Ok(g)
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

/// RMSNorm as `Pow/ReduceMean/Add/Sqrt/Div/Mul`, the pattern ORT fuses into
/// `SimplifiedLayerNormalization`.
fn rms_norm(g: &mut Graph, x: &str, weight: &str, eps: f64) -> String {
    let two = g.const_f32(&[], &[2.0]);
    let last = g.const_i64(&[1], &[-1]);
    let eps = g.const_f32(&[], &[eps as f32]);
    let sq = g.op("Pow", &[x, &two], vec![]);
    let mean = g.op("ReduceMean", &[&sq, &last], vec![Attr::int("keepdims", 1)]);
    let var = g.op("Add", &[&mean, &eps], vec![]);
    let rms = g.op("Sqrt", &[&var], vec![]);
    let normed = g.op("Div", &[x, &rms], vec![]);
    g.op("Mul", &[&normed, weight], vec![])
}

/// `[batch, 1, seq, total]` additive mask: query `i` (absolute index `past + i`) may see key `j`
/// iff `j <= past + i` and `attention_mask[b, j] == 1`. Masked entries get `f32::MIN`, not -inf,
/// so a row with nothing visible (a left-pad query) stays finite instead of turning NaN and
/// poisoning the cache through `0 · NaN`.
fn attention_mask(g: &mut Graph) -> String {
    let (zero, one) = (g.const_i64(&[], &[0]), g.const_i64(&[], &[1]));
    let ids_shape = g.op("Shape", &["input_ids"], vec![]);
    let seq = g.op("Gather", &[&ids_shape, &one], vec![Attr::int("axis", 0)]);
    let mask_shape = g.op("Shape", &["attention_mask"], vec![]);
    let total = g.op("Gather", &[&mask_shape, &one], vec![Attr::int("axis", 0)]);
    let past = g.op("Sub", &[&total, &seq], vec![]);
    let q_idx = g.op("Range", &[&zero, &seq, &one], vec![]);
    let q_abs = g.op("Add", &[&q_idx, &past], vec![]);
    let axis1 = g.const_i64(&[1], &[1]);
    let q_col = g.op("Unsqueeze", &[&q_abs, &axis1], vec![]);
    let k_idx = g.op("Range", &[&zero, &total, &one], vec![]);
    let causal = g.op("LessOrEqual", &[&k_idx, &q_col], vec![]);
    let pad = g.op("Cast", &["attention_mask"], vec![Attr::int("to", DataType::Bool as i64)]);
    let axes12 = g.const_i64(&[2], &[1, 2]);
    let pad = g.op("Unsqueeze", &[&pad, &axes12], vec![]);
    let visible = g.op("And", &[&causal, &pad], vec![]);
    let (open, closed) = (g.const_f32(&[], &[0.0]), g.const_f32(&[], &[f32::MIN]));
    g.op("Where", &[&visible, &open, &closed], vec![])
}

/// cos/sin tables `[max_pos, head_dim/2]` (computed in f32 like HF and candle) gathered by
/// `position_ids` and widened to `[batch, 1, seq, head_dim]` for rotate-half RoPE.
fn rope(g: &mut Graph, cfg: &LlamaConfig) -> (String, String) {
    let inv_freq = rope_inv_freq(cfg);
    let max_pos = cfg.max_position_embeddings;
    let (mut cos, mut sin) = (Vec::with_capacity(max_pos * inv_freq.len()), Vec::with_capacity(max_pos * inv_freq.len()));
    for p in 0..max_pos {
        for f in &inv_freq {
            let a = p as f32 * f;
            cos.push(a.cos());
            sin.push(a.sin());
        }
    }
    let dims = [max_pos as i64, inv_freq.len() as i64];
    g.b.initializer_f32("rope.cos_cache", &dims, &cos).initializer_f32("rope.sin_cache", &dims, &sin);
    let axis1 = g.const_i64(&[1], &[1]);
    let mut widen = |table: &str| {
        let half = g.op("Gather", &[table, "position_ids"], vec![Attr::int("axis", 0)]);
        let full = g.op("Concat", &[&half, &half], vec![Attr::int("axis", -1)]);
        g.op("Unsqueeze", &[&full, &axis1], vec![])
    };
    (widen("rope.cos_cache"), widen("rope.sin_cache"))
}

/// `x·cos + rotate_half(x)·sin` with `rotate_half([a, b]) = [-b, a]` over the last dim.
fn apply_rope(g: &mut Graph, x: &str, hd: usize, sh: &Shared) -> String {
    let halves = g.const_i64(&[2], &[hd as i64 / 2, hd as i64 / 2]);
    let (a, b) = (g.fresh("rope_a"), g.fresh("rope_b"));
    g.b.node("Split", &[x, &halves], &[&a, &b], vec![Attr::int("axis", -1)]);
    let neg_b = g.op("Neg", &[&b], vec![]);
    let rot = g.op("Concat", &[&neg_b, &a], vec![Attr::int("axis", -1)]);
    let xc = g.op("Mul", &[x, &sh.cos], vec![]);
    let rs = g.op("Mul", &[&rot, &sh.sin], vec![]);
    g.op("Add", &[&xc, &rs], vec![])
}

/// Self-attention of layer `i` on normed `x [b, s, hidden]`: writes `present.{i}.*` and
/// returns the `o_proj` output.
fn attention(g: &mut Graph, cfg: &LlamaConfig, i: usize, x: &str, w: [&WeightRef; 4], sh: &Shared) -> String {
    let (nh, nkv, hd) = (cfg.num_attention_heads as i64, cfg.num_kv_heads() as i64, cfg.head_dim() as i64);
    let perm_heads = Attr::ints("perm", &[0, 2, 1, 3]);
    let heads = |g: &mut Graph, wr: &WeightRef, n: i64| {
        let y = wr.matmul(g, x, None);
        let shape = g.const_i64(&[4], &[0, 0, n, hd]);
        let y = g.op("Reshape", &[&y, &shape], vec![]);
        g.op("Transpose", &[&y], vec![perm_heads.clone()])
    };
    let q = heads(g, w[0], nh);
    let k = heads(g, w[1], nkv);
    let v = heads(g, w[2], nkv);
    let q = apply_rope(g, &q, hd as usize, sh);
    let k = apply_rope(g, &k, hd as usize, sh);
    let (pk, pv) = (format!("present.{i}.key"), format!("present.{i}.value"));
    g.op_to("Concat", &[&format!("past_key_values.{i}.key"), &k], &pk, vec![Attr::int("axis", 2)]);
    g.op_to("Concat", &[&format!("past_key_values.{i}.value"), &v], &pv, vec![Attr::int("axis", 2)]);
    // GQA: each KV head serves `rep` query heads; [b, kv, t, d] → [b, kv, rep, t, d] → [b, h, t, d].
    let rep = nh / nkv;
    let repeat = |g: &mut Graph, t: &str| {
        if rep == 1 {
            return t.to_string();
        }
        let axis2 = g.const_i64(&[1], &[2]);
        let grow = g.const_i64(&[5], &[1, 1, rep, 1, 1]);
        let shape = g.const_i64(&[4], &[0, nh, -1, hd]);
        let t = g.op("Unsqueeze", &[t, &axis2], vec![]);
        let t = g.op("Expand", &[&t, &grow], vec![]);
        g.op("Reshape", &[&t, &shape], vec![])
    };
    let k = repeat(g, &pk);
    let v = repeat(g, &pv);
    let kt = g.op("Transpose", &[&k], vec![Attr::ints("perm", &[0, 1, 3, 2])]);
    let scores = g.op("MatMul", &[&q, &kt], vec![]);
    let scale = g.const_f32(&[], &[1.0 / (hd as f32).sqrt()]);
    let scores = g.op("Mul", &[&scores, &scale], vec![]);
    let scores = g.op("Add", &[&scores, &sh.mask], vec![]);
    let probs = g.op("Softmax", &[&scores], vec![Attr::int("axis", -1)]);
    let y = g.op("MatMul", &[&probs, &v], vec![]);
    let y = g.op("Transpose", &[&y], vec![Attr::ints("perm", &[0, 2, 1, 3])]);
    let flat = g.const_i64(&[3], &[0, 0, nh * hd]);
    let y = g.op("Reshape", &[&y, &flat], vec![]);
    w[3].matmul(g, &y, None)
}
