//! The decoder's attention, norms and RoPE written with plain opset-21 ops only (the graph of the
//! first export, kept for clients that need left padding: its mask honours `attention_mask`
//! per position, where `GroupQueryAttention` only knows each row's length).
use tinyforge_model::{LlamaConfig, llama::rope_inv_freq};

use crate::graph::Graph;
use crate::proto::DataType;
use crate::quantize::WeightRef;
use crate::tensor::Attr;

pub(crate) struct Shared {
    /// `[batch, 1, seq, total]` additive mask (0 or f32::MIN).
    pub mask: String,
    /// `[batch, 1, seq, head_dim]` RoPE tables for these positions (rotate-half layout).
    pub cos: String,
    pub sin: String,
}

/// RMSNorm as `Pow/ReduceMean/Add/Sqrt/Div/Mul`, the pattern ORT fuses into
/// `SimplifiedLayerNormalization`.
pub(crate) fn rms_norm(g: &mut Graph, x: &str, weight: &str, eps: f64) -> String {
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
pub(crate) fn attention_mask(g: &mut Graph) -> String {
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

/// The cos/sin tables `rope.cos_cache` / `rope.sin_cache` `[max_pos, head_dim/2]` (angles
/// `p · inv_freq` in f32 like HF and candle; `rope_inv_freq`: linear/llama3 scaling follows),
/// computed in the graph from the positions and the frequencies: all inputs are initializers, so
/// ONNX Runtime constant-folds them once at session load. Stored as tables they were 2.1 MB of
/// SmolLM2's file (8192 positions × 32 × 2 × 4 bytes: 2% of the int4 export, whose size goal
/// is 18% of fp32); the positions cost 32 KB.
pub(crate) fn rope_tables(g: &mut Graph, cfg: &LlamaConfig) -> (String, String) {
    let inv_freq = rope_inv_freq(cfg);
    let max_pos = cfg.max_position_embeddings;
    let positions: Vec<f32> = (0..max_pos).map(|p| p as f32).collect();
    let positions = g.const_f32(&[max_pos as i64, 1], &positions);
    let freq = g.const_f32(&[1, inv_freq.len() as i64], &inv_freq);
    let angles = g.op("Mul", &[&positions, &freq], vec![]);
    g.op_to("Cos", &[&angles], "rope.cos_cache", vec![]);
    g.op_to("Sin", &[&angles], "rope.sin_cache", vec![]);
    ("rope.cos_cache".into(), "rope.sin_cache".into())
}

/// The tables gathered by `position_ids` and widened to `[batch, 1, seq, head_dim]` for
/// rotate-half RoPE.
pub(crate) fn rope(g: &mut Graph, cfg: &LlamaConfig) -> (String, String) {
    let (cos, sin) = rope_tables(g, cfg);
    let axis1 = g.const_i64(&[1], &[1]);
    let mut widen = |table: &str| {
        let half = g.op("Gather", &[table, "position_ids"], vec![Attr::int("axis", 0)]);
        let full = g.op("Concat", &[&half, &half], vec![Attr::int("axis", -1)]);
        g.op("Unsqueeze", &[&full, &axis1], vec![])
    };
    (widen(&cos), widen(&sin))
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
pub(crate) fn attention(g: &mut Graph, cfg: &LlamaConfig, i: usize, x: &str, w: [&WeightRef; 4], sh: &Shared) -> String {
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
