//! The decoder's attention and norms as ONNX Runtime's fused CPU contrib ops (`com.microsoft`):
//! `GroupQueryAttention` (RoPE, GQA, causal softmax and the KV-cache append in one kernel) and
//! `SkipSimplifiedLayerNormalization` (residual add + RMSNorm). At batch 1 a decode step is ~30
//! layers of small ops, so per-op overhead and cache copies decide the speed, not the matmuls.
//!
//! KV cache contract (what `GroupQueryAttention` does with it): `past_key_values.{i}.*`
//! `[batch, kv_heads, P, head_dim]` holds each row's cached keys at positions `0..len_b`, right
//! padded; `present.{i}.*` is `[batch, kv_heads, max(P, total), head_dim]`. With `P = total - seq`
//! it behaves like a concat (the Optimum / transformers.js feeding); with a buffer of `P =
//! max_len` bound as both the past input and the present output (IOBinding), the new keys are
//! written in place and nothing is copied. Row lengths come from `attention_mask`
//! (`seqlens_k = Σ mask - 1`, `total_sequence_length = mask.shape[1]`), positions for RoPE from
//! those lengths: so rows must be right padded (or unpadded), and `position_ids` is not read.
use tinyforge_model::LlamaConfig;

use crate::graph::Graph;
use crate::proto::DataType;
use crate::quantize::WeightRef;
use crate::tensor::Attr;

/// Per-run values every layer's `GroupQueryAttention` reads.
pub(crate) struct GqaShared {
    pub seqlens_k: String,
    pub total_len: String,
    pub cos: String,
    pub sin: String,
}

/// `seqlens_k` int32 `[batch]` (= valid length - 1) and `total_sequence_length` int32 scalar,
/// from `attention_mask`.
pub(crate) fn gqa_shared(g: &mut Graph, cos: String, sin: String) -> GqaShared {
    g.b.opset("com.microsoft", 1);
    let axes = g.const_i64(&[1], &[1]);
    let valid = g.op("ReduceSum", &["attention_mask", &axes], vec![Attr::int("keepdims", 0)]);
    let one = g.const_i64(&[], &[1]);
    let last = g.op("Sub", &[&valid, &one], vec![]);
    let seqlens_k = g.op("Cast", &[&last], vec![Attr::int("to", DataType::Int32 as i64)]);
    let shape = g.op("Shape", &["attention_mask"], vec![]);
    let total = g.op("Gather", &[&shape, &one], vec![Attr::int("axis", 0)]);
    let total_len = g.op("Cast", &[&total], vec![Attr::int("to", DataType::Int32 as i64)]);
    GqaShared { seqlens_k, total_len, cos, sin }
}

/// Self-attention of layer `i` on normed `x [b, s, hidden]` with one packed q|k|v projection:
/// writes `present.{i}.*` and returns the `o_proj` output.
pub(crate) fn gqa_attention(g: &mut Graph, cfg: &LlamaConfig, i: usize, x: &str, qkv: &WeightRef, o: &WeightRef, sh: &GqaShared) -> String {
    let packed = qkv.matmul(g, x, None);
    let y = g.fresh("attn");
    let (pk, pv) = (format!("past_key_values.{i}.key"), format!("past_key_values.{i}.value"));
    let (ok, ov) = (format!("present.{i}.key"), format!("present.{i}.value"));
    g.b.node_in(
        "com.microsoft",
        "GroupQueryAttention",
        &[&packed, "", "", &pk, &pv, &sh.seqlens_k, &sh.total_len, &sh.cos, &sh.sin],
        &[&y, &ok, &ov],
        vec![
            Attr::int("num_heads", cfg.num_attention_heads as i64),
            Attr::int("kv_num_heads", cfg.num_kv_heads() as i64),
            Attr::int("do_rotary", 1),
            Attr::int("rotary_interleaved", 0),
        ],
    );
    o.matmul(g, &y, None)
}

/// `residual + x` and its RMSNorm: returns `(normed, sum)`.
pub(crate) fn skip_norm(g: &mut Graph, x: &str, residual: &str, weight: &str, eps: f64) -> (String, String) {
    let (normed, sum) = (g.fresh("normed"), g.fresh("residual"));
    g.b.node_in(
        "com.microsoft",
        "SkipSimplifiedLayerNormalization",
        &[x, residual, weight],
        &[&normed, "", "", &sum],
        vec![Attr::float("epsilon", eps as f32)],
    );
    (normed, sum)
}
